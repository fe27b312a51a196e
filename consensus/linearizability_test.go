package consensus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The history checked by porcupine: operations on a few keys, each a get,
// put or compare-and-swap.
type kvInput struct {
	op            string // "get", "put", "cas"
	key, old, val string
}

type kvOutput struct {
	found   bool // get: key exists; cas: swapped
	val     string
	unknown bool // the write's outcome is unknown (ErrIndeterminate)
}

type kvState struct {
	exists bool
	val    string
}

// kvModel is the sequential specification of the store, per key. A write
// with an unknown outcome may or may not have taken effect.
var kvModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{kvState{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			if out.found == s.exists && (!s.exists || out.val == s.val) {
				return []any{s}
			}
			return nil
		case "put":
			next := kvState{exists: true, val: in.val}
			if out.unknown {
				return []any{s, next}
			}
			return []any{next}
		case "cas":
			match := s.exists && s.val == in.old
			next := kvState{exists: true, val: in.val}
			switch {
			case out.unknown && match:
				return []any{s, next}
			case out.unknown:
				return []any{s}
			case out.found && match:
				return []any{next}
			case !out.found && !match:
				return []any{s}
			}
			return nil
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := fmt.Sprintf("%v %q", out.found, out.val)
		if out.unknown {
			res = "unknown"
		}
		switch in.op {
		case "get":
			return fmt.Sprintf("get(%s) → %s", in.key, res)
		case "put":
			return fmt.Sprintf("put(%s, %s) → %s", in.key, in.val, res)
		}
		return fmt.Sprintf("cas(%s, %s→%s) → %s", in.key, in.old, in.val, res)
	},
}

// historyRun drives concurrent clients against c while a nemesis
// partitions, heals, crashes and restarts nodes, and returns the history.
type historyRun struct {
	c        *LocalCluster
	clients  int
	keys     []string
	duration time.Duration
	stale    bool // reads use Stale mode on a random node
	seed     uint64
}

// run returns the history and the clock its operations are stamped with,
// for operations a test adds after the run.
func (r historyRun) run(t *testing.T) ([]porcupine.Operation, func() int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), r.duration)
	defer cancel()
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
		nextID  = r.clients
	)
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}
	for cl := range r.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(r.seed, uint64(cl)))
			id := cl
			for seq := 0; ctx.Err() == nil; seq++ {
				in := kvInput{key: r.keys[rng.IntN(len(r.keys))], val: fmt.Sprintf("c%d.%d", cl, seq)}
				switch p := rng.IntN(10); {
				case p < 4:
					in.op = "get"
				case p < 7:
					in.op = "put"
				default:
					in.op = "cas"
					in.old = fmt.Sprintf("c%d.%d", rng.IntN(r.clients), max(0, seq-rng.IntN(4)))
				}
				var n *Node
				if in.op == "get" && r.stale {
					nodes := r.c.Nodes()
					if len(nodes) > 0 {
						n = nodes[rng.IntN(len(nodes))]
					}
				} else {
					n = r.c.Leader()
				}
				if n == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				opCtx, opCancel := context.WithTimeout(ctx, 500*time.Millisecond)
				call := now()
				var (
					out kvOutput
					err error
					kv  KV
				)
				switch in.op {
				case "get":
					mode := Linearizable
					if r.stale {
						mode = Stale
					}
					kv, err = n.Read(opCtx, in.key, mode)
					out = kvOutput{found: err == nil, val: string(kv.Value)}
					if errors.Is(err, ErrKeyNotFound) {
						err = nil
					}
				case "put":
					_, err = n.Put(opCtx, in.key, []byte(in.val))
				case "cas":
					_, err = n.CompareAndSwap(opCtx, in.key, []byte(in.old), []byte(in.val))
					out.found = err == nil
					if errors.Is(err, ErrCompareFailed) || errors.Is(err, ErrKeyNotFound) {
						err = nil
					}
				}
				ret := now()
				opCancel()
				switch {
				case err == nil:
					record(porcupine.Operation{ClientId: id, Input: in, Output: out, Call: call, Return: ret})
				case in.op != "get" && errors.Is(err, ErrIndeterminate):
					// May take effect at any later time: it never returns.
					record(porcupine.Operation{ClientId: id, Input: in, Output: kvOutput{unknown: true}, Call: call, Return: int64(r.duration) * 10})
					mu.Lock()
					id = nextID // the old client id stays busy forever
					nextID++
					mu.Unlock()
				}
				// Other errors (not leader, closed) mean the operation
				// did not happen: drop it.
			}
		})
	}
	if err := r.nemesis(ctx); err != nil {
		t.Errorf("nemesis: %v", err)
	}
	wg.Wait()
	return history, now
}

// nemesis injects a fault every few election timeouts until ctx ends, then
// heals and restarts everything. It returns the errors of nodes that failed
// to restart.
func (r historyRun) nemesis(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(r.seed, 1<<32))
	tick := time.NewTicker(120 * time.Millisecond)
	defer tick.Stop()
	crashed := ""
	var errs []error
	for {
		select {
		case <-ctx.Done():
			r.c.Heal()
			if crashed != "" {
				_, err := r.c.Restart(crashed)
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		case <-tick.C:
		}
		ids := r.c.IDs()
		switch rng.IntN(5) {
		case 0:
			if l := r.c.Leader(); l != nil {
				r.c.Isolate(l.ID())
			}
		case 1:
			i := rng.IntN(len(ids))
			r.c.Partition(append(append([]string{}, ids[:i]...), ids[i+1:]...), ids[i:i+1])
		case 2:
			if crashed == "" {
				crashed = ids[rng.IntN(len(ids))]
				_ = r.c.Crash(crashed)
			}
		case 3:
			if crashed != "" {
				_, err := r.c.Restart(crashed)
				errs = append(errs, err)
				crashed = ""
			}
		default:
			r.c.Heal()
		}
	}
}

func checkHistory(t *testing.T, h []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	model := kvModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, h, 20*time.Second)
	if res == porcupine.Illegal {
		path := filepath.Join(t.ArtifactDir(), "history.html")
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("porcupine visualization written to %s", path)
		}
	}
	return res
}

// Concurrent clients doing put/get/CAS against a cluster under partitions,
// heals, crashes and restarts produce a linearizable history.
func TestLinearizable_UnderNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("nemesis run skipped in -short mode")
	}
	c := newCluster(t, ClusterOptions{})
	h, _ := historyRun{c: c, clients: 6, keys: []string{"x", "y", "z"}, duration: 2500 * time.Millisecond, seed: 1}.run(t)
	requireLinearizable(t, h)
}

// The same nemesis on durable storage: every crashed node restarts from
// its data directory, leaders cut off with unreplicated entries have their
// log tails replaced when they rejoin, and at the end the whole cluster
// restarts from disk. The history, closed by a read of every key after
// that restart, is linearizable: no acknowledged write was lost.
func TestLinearizable_DurableUnderNemesisAndFullRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("nemesis run skipped in -short mode")
	}
	c := newCluster(t, ClusterOptions{DataDir: t.TempDir()})
	keys := []string{"x", "y", "z"}
	h, now := historyRun{c: c, clients: 6, keys: keys, duration: 2500 * time.Millisecond, seed: 2}.run(t)
	ctx := testCtx(t)
	restartAll(t, ctx, c)
	for i, key := range keys {
		var kv KV
		call := now()
		err := retryOnLeader(ctx, c, func(n *Node) error {
			var err error
			kv, err = n.Get(ctx, key)
			return err
		})
		if !errors.Is(err, ErrKeyNotFound) {
			require.NoError(t, err)
		}
		h = append(h, porcupine.Operation{ClientId: 1000 + i, Input: kvInput{op: "get", key: key}, Output: kvOutput{found: err == nil, val: string(kv.Value)}, Call: call, Return: now()})
	}
	requireLinearizable(t, h)
}

// requireLinearizable checks that h holds enough reads and writes to mean
// something, and that porcupine finds it linearizable.
func requireLinearizable(t *testing.T, h []porcupine.Operation) {
	t.Helper()
	writes, gets := 0, 0
	for _, op := range h {
		if op.Input.(kvInput).op == "get" {
			gets++
		} else {
			writes++
		}
	}
	t.Logf("history: %d gets, %d writes", gets, writes)
	require.Greater(t, gets, 50, "enough reads to be meaningful")
	require.Greater(t, writes, 50, "enough writes to be meaningful")
	assert.Equal(t, porcupine.Ok, checkHistory(t, h), "history must be linearizable")
}

// The checker is not vacuous: with stale reads served by any node, the
// same workload and nemesis produce a history porcupine rejects.
func TestLinearizable_StaleReadsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("nemesis run skipped in -short mode")
	}
	c := newCluster(t, ClusterOptions{})
	for seed := uint64(1); seed <= 3; seed++ {
		h, _ := historyRun{c: c, clients: 6, keys: []string{"x"}, duration: 1500 * time.Millisecond, stale: true, seed: seed}.run(t)
		model := kvModel.ToModel()
		if porcupine.CheckOperationsTimeout(model, h, 20*time.Second) == porcupine.Illegal {
			return
		}
	}
	t.Fatal("stale reads under partitions were never caught as non-linearizable")
}
