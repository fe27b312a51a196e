package replica

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registerInput is a read (write false) or a write of v.
type registerInput struct {
	write bool
	v     int
}

// registerModel is one integer register, 0 before the first write.
var registerModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerInput)
		if in.write {
			return true, in.v
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(registerInput)
		if in.write {
			return fmt.Sprintf("put %d", in.v)
		}
		return fmt.Sprintf("get → %d", output.(int))
	},
}

// history records the operations of concurrent clients on fake time.
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

// read reads key at opts and records the read; a failed read is left out
// (it returned nothing).
func (h *history) read(t *testing.T, c *Coordinator, client int, opts Options) {
	call := time.Now().UnixNano()
	res, err := c.Get(context.Background(), "k", opts)
	v := 0
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return
	default:
		require.Len(t, res.Values, 1, "one writer, every write carrying the last one's context: no siblings")
		v, err = strconv.Atoi(string(res.Values[0]))
		require.NoError(t, err)
	}
	h.add(porcupine.Operation{ClientId: client, Input: registerInput{}, Output: v, Call: call, Return: time.Now().UnixNano()})
}

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// TestLinearizability_QuorumAloneIsNot builds the anomaly by hand: a write
// at QUORUM has reached one replica; reader A's quorum includes it and
// returns the new value; reader B, starting after A returned, reads a
// quorum of the two others and returns the old one. R + W > N, and yet no
// order of the three operations explains what the readers saw. With
// WriteBack, A writes what it read back to a quorum before answering, and
// B's quorum must overlap it.
func TestLinearizability_QuorumAloneIsNot(t *testing.T) {
	for _, writeBack := range []bool{false, true} {
		t.Run(fmt.Sprintf("writeBack=%v", writeBack), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc := newTestCluster(t, 3, 3)
				p := tc.prefs("k", 3)
				delay := map[[2]string]time.Duration{
					{"w", p[0]}: time.Millisecond, {"w", p[1]}: 50 * time.Millisecond, {"w", p[2]}: 50 * time.Millisecond,
					{"a", p[0]}: time.Millisecond, {"a", p[1]}: 2 * time.Millisecond, {"a", p[2]}: 3 * time.Millisecond,
					{"b", p[0]}: 100 * time.Millisecond, {"b", p[1]}: time.Millisecond, {"b", p[2]}: time.Millisecond,
				}
				tc.net.SetLatency(func(from, to string) time.Duration {
					if d, ok := delay[[2]string{from, to}]; ok {
						return d
					}
					return delay[[2]string{to, from}]
				})
				cfg := Config{DisableReadRepair: true}
				w, a, b := tc.coordinatorAt(t, "w", cfg), tc.coordinatorAt(t, "a", cfg), tc.coordinatorAt(t, "b", cfg)
				opts := Options{Level: Quorum, WriteBack: writeBack}

				var h history
				var wg sync.WaitGroup
				wg.Go(func() {
					call := time.Now().UnixNano()
					_, err := w.Put(context.Background(), "k", []byte("1"), Context{}, opts)
					assert.NoError(t, err)
					h.add(porcupine.Operation{ClientId: 0, Input: registerInput{write: true, v: 1}, Call: call, Return: time.Now().UnixNano()})
				})
				wg.Go(func() {
					time.Sleep(5 * time.Millisecond)
					h.read(t, a, 1, opts)
					time.Sleep(time.Millisecond)
					h.read(t, b, 2, opts)
				})
				wg.Wait()
				require.Len(t, h.ops, 3)
				assert.Equal(t, writeBack, porcupine.CheckOperations(registerModel, h.ops), "linearizable with write-back only: %v", h.ops)
				synctest.Wait()
			})
		})
	}
}

// TestLinearizability_Random runs one writer and three readers at QUORUM on
// random exponential latencies, and checks each history with porcupine:
// with WriteBack every history is linearizable; without it some are not.
func TestLinearizability_Random(t *testing.T) {
	runs := 30
	if testing.Short() {
		runs = 10
	}
	illegal := map[bool]int{}
	for _, writeBack := range []bool{false, true} {
		for seed := range uint64(runs) {
			synctest.Test(t, func(t *testing.T) {
				tc := newTestCluster(t, 3, 3)
				var mu sync.Mutex
				rng := rand.New(rand.NewPCG(seed, 42))
				tc.net.SetLatency(func(string, string) time.Duration {
					mu.Lock()
					defer mu.Unlock()
					return time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
				})
				cfg := Config{DisableReadRepair: true}
				opts := Options{Level: Quorum, WriteBack: writeBack}
				var h history
				var wg sync.WaitGroup
				w := tc.coordinatorAt(t, "w", cfg)
				wg.Go(func() {
					var cc Context
					for v := 1; v <= 10; v++ {
						call := time.Now().UnixNano()
						res, err := w.Put(context.Background(), "k", []byte(strconv.Itoa(v)), cc, opts)
						require.NoError(t, err)
						cc = res.Context
						h.add(porcupine.Operation{ClientId: 0, Input: registerInput{write: true, v: v}, Call: call, Return: time.Now().UnixNano()})
						time.Sleep(3 * time.Millisecond)
					}
				})
				for r := 1; r <= 3; r++ {
					c := tc.coordinatorAt(t, fmt.Sprintf("r%d", r), cfg)
					wg.Go(func() {
						for range 15 {
							h.read(t, c, r, opts)
						}
					})
				}
				wg.Wait()
				if !porcupine.CheckOperations(registerModel, h.ops) {
					illegal[writeBack]++
				}
				synctest.Wait()
			})
		}
	}
	t.Logf("non-linearizable histories of %d: %d at QUORUM, %d at QUORUM with write-back", runs, illegal[false], illegal[true])
	assert.Zero(t, illegal[true], "ABD's write-back makes every history linearizable")
	assert.Positive(t, illegal[false], "R + W > N alone lets porcupine find a non-linearizable history")
}
