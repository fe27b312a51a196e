package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCoordinator_PutGetAtEachLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 5, 3)
		c := tc.coordinator(t, Config{})
		ctx := context.Background()
		for _, lvl := range []Level{One, Quorum, All, 0} {
			key := "k-" + lvl.String()
			_, err := c.Put(ctx, key, []byte("v1"), Context{}, Options{Level: lvl})
			require.NoError(t, err)
			synctest.Wait() // replication beyond W ends
			got, err := c.Get(ctx, key, Options{Level: lvl})
			require.NoError(t, err, lvl)
			assert.Equal(t, []string{"v1"}, strs(got.Values), lvl)
			// Every replica, and no other node, holds it.
			for name := range tc.nodes {
				_, ok, _ := tc.stores[name].Get(key)
				assert.Equal(t, contains(tc.prefs(key, 3), name), ok, "%s on %s", key, name)
			}
		}
		_, err := c.Get(ctx, "missing", Options{})
		assert.ErrorIs(t, err, ErrNotFound)
	})
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// Two clients update the same version of a cart concurrently: both writes
// carry the context of "milk", neither saw the other. Version vectors keep
// both as siblings until a write carrying their context resolves them;
// last-writer-wins keeps the later one and loses the other.
func TestCoordinator_ConcurrentUpdates(t *testing.T) {
	for _, lww := range []bool{false, true} {
		t.Run(fmt.Sprintf("lww=%v", lww), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc := newTestCluster(t, 3, 3)
				c := tc.coordinator(t, Config{LastWriterWins: lww})
				ctx := context.Background()
				_, err := c.Put(ctx, "cart", []byte("milk"), Context{}, Options{})
				require.NoError(t, err)
				base, err := c.Get(ctx, "cart", Options{})
				require.NoError(t, err)
				_, err = c.Put(ctx, "cart", []byte("milk,eggs"), base.Context, Options{})
				require.NoError(t, err)
				time.Sleep(time.Millisecond) // the second write is later by the clock
				_, err = c.Put(ctx, "cart", []byte("milk,bread"), base.Context, Options{})
				require.NoError(t, err)
				synctest.Wait()

				got, err := c.Get(ctx, "cart", Options{Level: All})
				require.NoError(t, err)
				if lww {
					assert.Equal(t, []string{"milk,bread"}, strs(got.Values), "the earlier concurrent update is lost")
					return
				}
				assert.ElementsMatch(t, []string{"milk,eggs", "milk,bread"}, strs(got.Values),
					"concurrent writes coordinated by one node are both kept")

				// A write carrying the context of both resolves them.
				_, err = c.Put(ctx, "cart", []byte("milk,eggs,bread"), got.Context, Options{})
				require.NoError(t, err)
				synctest.Wait()
				got, err = c.Get(ctx, "cart", Options{Level: All})
				require.NoError(t, err)
				assert.Equal(t, []string{"milk,eggs,bread"}, strs(got.Values))
				for _, n := range tc.prefs("cart", 3) {
					assert.Equal(t, []string{"milk,eggs,bread"}, tc.stored(t, n, "cart"), n)
				}
			})
		})
	}
}

func TestCoordinator_PartitionAndLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{Timeout: 100 * time.Millisecond})
		ctx := context.Background()
		key := "k"
		p := tc.prefs(key, 3)

		// One replica partitioned from the client: QUORUM and ONE still
		// answer, ALL does not (it waits until the deadline).
		tc.net.Partition([]string{"client"}, []string{p[2]})
		_, err := c.Put(ctx, key, []byte("a"), Context{}, Options{Level: Quorum})
		require.NoError(t, err)
		start := time.Now()
		_, err = c.Put(ctx, key, []byte("b"), Context{}, Options{Level: All})
		require.ErrorIs(t, err, ErrUnavailable)
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "ALL waits out the deadline")
		_, err = c.Get(ctx, key, Options{Level: All})
		require.ErrorIs(t, err, ErrUnavailable)
		got, err := c.Get(ctx, key, Options{Level: Quorum})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"a", "b"}, strs(got.Values), "the failed ALL write is not rolled back")

		// Two of three cut: only ONE is available.
		tc.net.Partition([]string{"client"}, []string{p[1]})
		_, err = c.Put(ctx, key, []byte("c"), got.Context, Options{Level: Quorum})
		require.ErrorIs(t, err, ErrUnavailable)
		_, err = c.Put(ctx, key, []byte("d"), got.Context, Options{Level: One})
		require.NoError(t, err)
		got, err = c.Get(ctx, key, Options{Level: One})
		require.NoError(t, err)
		assert.Contains(t, strs(got.Values), "d")

		// A per-request deadline shorter than the coordinator's.
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err = c.Get(short, key, Options{Level: Quorum})
		require.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 10*time.Millisecond, time.Since(start))
		tc.net.Heal()
	})
}

func TestCoordinator_CoordinatorSkipsASilentFirstReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{Timeout: 300 * time.Millisecond})
		p := tc.prefs("k", 3)
		tc.net.Cut("client", p[0]) // requests to the first replica are lost
		start := time.Now()
		_, err := c.Put(context.Background(), "k", []byte("v"), Context{}, Options{Level: Quorum})
		require.NoError(t, err)
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "a third of the deadline for the silent replica")
		synctest.Wait()
		assert.Equal(t, []string{"v"}, tc.stored(t, p[1], "k"))
		assert.Empty(t, tc.stored(t, p[0], "k"))
	})
}

func TestCoordinator_LostReplyIsNotAnAcknowledgement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{Timeout: 50 * time.Millisecond})
		p := tc.prefs("k", 3)
		tc.net.Cut(p[1], "client") // one-way: p[1] gets requests, its replies are lost
		tc.net.Cut(p[2], "client")
		_, err := c.Put(context.Background(), "k", []byte("v"), Context{}, Options{Level: All})
		require.ErrorIs(t, err, ErrUnavailable)
		synctest.Wait()
		for _, n := range p {
			assert.Equal(t, []string{"v"}, tc.stored(t, n, "k"), "%s stored the write it could not acknowledge", n)
		}
	})
}

func TestCoordinator_CrashedReplicaFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{})
		p := tc.prefs("k", 3)
		tc.net.Crash(p[0])
		start := time.Now()
		_, err := c.Put(context.Background(), "k", []byte("a"), Context{}, Options{Level: All})
		require.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorIs(t, err, ErrNodeDown)
		assert.Zero(t, time.Since(start), "a refused connection is not a timeout")
		_, err = c.Put(context.Background(), "k", []byte("b"), Context{}, Options{Level: Quorum})
		require.NoError(t, err)

		// Restarted without its memory, it gets the key back from a read
		// (read repair).
		tc.start(t, p[0], 3)
		_, err = c.Get(context.Background(), "k", Options{Level: All})
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, []string{"a", "b"}, tc.stored(t, p[0], "k"))
	})
}

func TestCoordinator_DelayDecidesWhatAOneReadSees(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{DisableReadRepair: true})
		ctx := context.Background()
		p := tc.prefs("k", 3)
		_, err := c.Put(ctx, "k", []byte("old"), Context{}, Options{Level: All})
		require.NoError(t, err)
		// The write at ONE returns before p[2] has it (its copy is lost on
		// the way); p[2] answers reads first, so a read at ONE is stale.
		tc.net.Cut("client", p[2])
		_, err = c.Put(ctx, "k", []byte("new"), Context{}, Options{Level: One})
		require.NoError(t, err)
		synctest.Wait() // the copy to p[2] is on its way to being lost
		tc.net.Heal()
		tc.net.SetLatency(func(from, to string) time.Duration {
			if from == p[2] || to == p[2] {
				return 0
			}
			return 5 * time.Millisecond
		})
		got, err := c.Get(ctx, "k", Options{Level: One})
		require.NoError(t, err)
		assert.Equal(t, []string{"old"}, strs(got.Values), "a ONE read answered by the lagging replica is stale")
		got, err = c.Get(ctx, "k", Options{Level: Quorum})
		require.NoError(t, err)
		assert.Contains(t, strs(got.Values), "new", "a QUORUM read overlaps the write's replica")
		synctest.Wait()
	})
}

func TestCoordinator_BadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{MaxValueSize: 8})
		ctx := context.Background()
		other, err := c.Put(ctx, "other", []byte("x"), Context{}, Options{})
		require.NoError(t, err)
		for _, tt := range []struct {
			name  string
			key   string
			value string
			cc    Context
			opts  Options
			want  error
		}{
			{"N < 1", "k", "v", Context{}, Options{N: -1}, ErrInvalidLevel},
			{"N > nodes", "k", "v", Context{}, Options{N: 4}, ErrInvalidLevel},
			{"R > N", "k", "v", Context{}, Options{N: 3, R: 4}, ErrInvalidLevel},
			{"W < 1", "k", "v", Context{}, Options{W: -2}, ErrInvalidLevel},
			{"W > N", "k", "v", Context{}, Options{N: 2, W: 3}, ErrInvalidLevel},
			{"unknown level", "k", "v", Context{}, Options{Level: 9}, ErrInvalidLevel},
			{"context of another key", "k", "v", other.Context, Options{}, ErrInvalidContext},
			{"oversized value", "k", "123456789", Context{}, Options{}, ErrValueTooLarge},
			{"empty key", "", "v", Context{}, Options{}, ErrInvalidArgument},
		} {
			_, err := c.Put(ctx, tt.key, []byte(tt.value), tt.cc, tt.opts)
			assert.ErrorIs(t, err, tt.want, tt.name)
			assert.ErrorIs(t, err, ErrInvalidArgument, tt.name)
			if tt.cc.Key() == "" && tt.value == "v" {
				_, err = c.Get(ctx, tt.key, tt.opts)
				assert.ErrorIs(t, err, tt.want, "Get: "+tt.name)
			}
		}
		_, err = c.Get(ctx, "k", Options{R: 2, W: 5})
		assert.ErrorIs(t, err, ErrInvalidLevel, "W is checked on reads too")

		for _, cfg := range []Config{
			{},
			{Placement: tc.ring},
			{Placement: tc.ring, Transport: tc.net.Endpoint("c"), N: 4},
			{Placement: tc.ring, Transport: tc.net.Endpoint("c"), N: -1},
			{Placement: tc.ring, Transport: tc.net.Endpoint("c"), Timeout: -time.Second},
			{Placement: tc.ring, Transport: tc.net.Endpoint("c"), MaxValueSize: -1},
		} {
			_, err := NewCoordinator(cfg)
			assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", cfg)
		}
		for _, cfg := range []NodeConfig{
			{Placement: tc.ring},
			{Name: "n9", Placement: tc.ring},
			{Name: "n1"},
			{Name: "n1", Placement: tc.ring, N: -3},
		} {
			_, err := NewNode(cfg)
			assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", cfg)
		}
	})
}

// liar is a node that answers every request with garbage of one kind.
type liar struct{ kind string }

func (l liar) Handle(_ context.Context, req *Request) (*Response, error) {
	good := Record{Siblings: []Sibling{{Value: []byte("lie"), Dot: Dot{"n9", 1}}}, Clock: VersionVector{"n9": 1}}
	switch l.kind {
	case "nil":
		return nil, nil
	case "other key":
		return &Response{Key: req.Key + "x", Record: &good}, nil
	case "no record":
		return &Response{Key: req.Key}, nil
	case "zero dot":
		return &Response{Key: req.Key, Record: &Record{Siblings: []Sibling{{Value: []byte("lie")}}}}, nil
	case "dot outside clock":
		return &Response{Key: req.Key, Record: &Record{Siblings: good.Siblings}}, nil
	case "huge value":
		return &Response{Key: req.Key, Record: &Record{Siblings: []Sibling{{Value: make([]byte, 100), Dot: Dot{"n9", 1}}}, Clock: good.Clock}}, nil
	case "older than the write":
		return &Response{Key: req.Key, Record: &good}, nil
	}
	return nil, errors.New("liar: unknown kind")
}

func TestCoordinator_GarbageReplyMeansFailedNode(t *testing.T) {
	for _, kind := range []string{"nil", "other key", "no record", "zero dot", "dot outside clock", "huge value", "older than the write"} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc := newTestCluster(t, 3, 3)
				c := tc.coordinator(t, Config{MaxValueSize: 16})
				ctx := context.Background()
				p := tc.prefs("k", 3)
				_, err := c.Put(ctx, "k", []byte("truth"), Context{}, Options{Level: All})
				require.NoError(t, err)
				tc.net.Register(p[2], liar{kind})

				_, err = c.Put(ctx, "k", []byte("truth2"), Context{}, Options{Level: All})
				require.ErrorIs(t, err, ErrUnavailable)
				_, err = c.Get(ctx, "k", Options{Level: All})
				if kind == "older than the write" {
					// A read cannot tell an old record from a new one:
					// the liar's well-formed record is merged as a sibling
					// would be.
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, ErrUnavailable)
					assert.ErrorIs(t, err, ErrBadReply)
				}
				got, err := c.Get(ctx, "k", Options{R: 2})
				require.NoError(t, err)
				for _, v := range strs(got.Values) {
					assert.True(t, strings.HasPrefix(v, "truth") || kind == "older than the write", v)
				}
				synctest.Wait()
			})
		})
	}
}

func TestCoordinator_CloseWaitsForReplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		tc.net.SetLatency(func(from, to string) time.Duration {
			if to == "n3" || from == "n3" {
				return 50 * time.Millisecond
			}
			return 0
		})
		c, err := NewCoordinator(Config{Placement: tc.ring, Transport: tc.net.Endpoint("client")})
		require.NoError(t, err)
		ctx := context.Background()
		var keys []string
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			if tc.prefs(k, 3)[0] != "n3" {
				keys = append(keys, k)
				_, err := c.Put(ctx, k, []byte("v"), Context{}, Options{Level: One})
				require.NoError(t, err)
			}
		}
		require.NotEmpty(t, keys)
		start := time.Now()
		require.NoError(t, c.Close(ctx))
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "Close waits for the replica that is 50 ms away")
		for _, k := range keys {
			assert.Equal(t, []string{"v"}, tc.stored(t, "n3", k), k)
		}
		_, err = c.Put(ctx, "a", []byte("v"), Context{}, Options{})
		assert.ErrorIs(t, err, ErrClosed)
		_, err = c.Get(ctx, "a", Options{})
		assert.ErrorIs(t, err, ErrClosed)
		require.NoError(t, c.Close(ctx), "a second Close waits for the same shutdown")

		// Close under a context that ends first cancels what is in flight.
		c2, err := NewCoordinator(Config{Placement: tc.ring, Transport: tc.net.Endpoint("client")})
		require.NoError(t, err)
		_, err = c2.Put(ctx, keys[0], []byte("w"), Context{}, Options{Level: One})
		require.NoError(t, err)
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		err = c2.Close(short)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestCoordinator_ConcurrentUse(t *testing.T) {
	tc := newTestCluster(t, 5, 3)
	c := tc.coordinator(t, Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			key := string(rune('a' + g%3))
			for i := range 50 {
				got, err := c.Get(ctx, key, Options{Level: One})
				var cc Context
				if err == nil {
					cc = got.Context
				} else if !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
				if _, err := c.Put(ctx, key, []byte{byte(i)}, cc, Options{Level: Quorum}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Close(ctx))
	for _, key := range []string{"a", "b", "c"} {
		var first Record
		for i, n := range tc.prefs(key, 3) {
			r, _, _ := tc.stores[n].Get(key)
			if i == 0 {
				first = r
				continue
			}
			// Replicas may differ (a write at QUORUM skips one), but
			// each holds at least one value.
			assert.NotEmpty(t, r.Siblings)
		}
		assert.NotEmpty(t, first.Siblings)
	}
}

func TestCoordinator_ValueOfTheMaximumSizeIsStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{})
		ctx := context.Background()
		max := strings.Repeat("x", DefaultMaxValueSize)
		_, err := c.Put(ctx, "k", []byte(max), Context{}, Options{Level: All})
		require.NoError(t, err, "a value of exactly MaxValueSize, at the coordinator and at every node")
		got, err := c.Get(ctx, "k", Options{Level: All})
		require.NoError(t, err)
		assert.Equal(t, []string{max}, strs(got.Values))
		_, err = c.Put(ctx, "k", []byte(max+"x"), got.Context, Options{Level: All})
		assert.ErrorIs(t, err, ErrValueTooLarge)
		synctest.Wait()
	})
}

func TestCoordinator_EveryReplicaDownFailsAWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{})
		p := tc.prefs("k", 3)
		for _, n := range p {
			tc.net.Crash(n)
		}
		_, err := c.Put(context.Background(), "k", []byte("v"), Context{}, Options{Level: One})
		require.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorIs(t, err, ErrNodeDown)
		for _, n := range p {
			assert.ErrorContains(t, err, n+":", "the error names each replica tried")
		}
	})
}

func TestCoordinator_SilentReplicasShareTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{Timeout: 300 * time.Millisecond})
		p := tc.prefs("k", 3)
		tc.net.Cut("client", p[0])
		tc.net.Cut("client", p[1])
		start := time.Now()
		_, err := c.Put(context.Background(), "k", []byte("v"), Context{}, Options{Level: One})
		require.NoError(t, err)
		// A third of 300 ms for p[0], half of the 200 ms left for p[1].
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		assert.Equal(t, []string{"v"}, tc.stored(t, p[2], "k"))
		synctest.Wait()
	})
}

func TestSloppyQuorum_SilentReplicaLeavesTimeForAFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 4, 3)
		c := tc.coordinator(t, Config{Timeout: 200 * time.Millisecond, SloppyQuorum: true})
		p := tc.prefs("k", 4) // p[3] is the only fallback
		tc.net.Cut("client", p[1])
		start := time.Now()
		_, err := c.Put(context.Background(), "k", []byte("v"), Context{}, Options{Level: All})
		require.NoError(t, err)
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "half the deadline for the silent replica, then the fallback")
		synctest.Wait()
		_, ok, err := tc.hints[p[3]].Get(hintKey(p[1], "k"))
		require.NoError(t, err)
		assert.True(t, ok)
	})
}

func TestSloppyQuorum_GarbageFromAFallbackIsNoAcknowledgement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 4, 3)
		c := tc.coordinator(t, Config{SloppyQuorum: true})
		p := tc.prefs("k", 4)
		tc.net.Crash(p[1])
		tc.net.Register(p[3], liar{"other key"})
		_, err := c.Put(context.Background(), "k", []byte("v"), Context{}, Options{Level: All})
		require.ErrorIs(t, err, ErrUnavailable)
		synctest.Wait()
	})
}

// emptyLWW is a node that answers every request with a last-writer-wins
// record of no value.
type emptyLWW struct{}

func (emptyLWW) Handle(_ context.Context, req *Request) (*Response, error) {
	return &Response{Key: req.Key, Record: &Record{LWW: true}}, nil
}

func TestCoordinator_LastWriterWinsReadOfNoValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{LastWriterWins: true})
		for _, n := range tc.prefs("k", 3) {
			tc.net.Register(n, emptyLWW{})
		}
		_, err := c.Get(context.Background(), "k", Options{Level: All})
		require.ErrorIs(t, err, ErrNotFound)
		synctest.Wait()
	})
}

func TestCoordinator_WriteBackOnlyWhenFewerThanWAgree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{DisableReadRepair: true})
		ctx := context.Background()
		p := tc.prefs("k", 3)
		tc.net.Cut("client", p[2])
		_, err := c.Put(ctx, "k", []byte("v"), Context{}, Options{Level: Quorum})
		require.NoError(t, err)
		synctest.Wait()
		tc.net.Heal()
		require.Empty(t, tc.stored(t, p[2], "k"))
		tc.net.SetLatency(func(_, _ string) time.Duration { return 10 * time.Millisecond })

		// Two replicas agree: W = 2 holds it already, one round trip.
		start := time.Now()
		_, err = c.Get(ctx, "k", Options{R: 3, W: 2, WriteBack: true})
		require.NoError(t, err)
		assert.Equal(t, 20*time.Millisecond, time.Since(start))
		assert.Empty(t, tc.stored(t, p[2], "k"))

		// W = 3: the stale replica gets it back before the read answers.
		start = time.Now()
		_, err = c.Get(ctx, "k", Options{R: 3, W: 3, WriteBack: true})
		require.NoError(t, err)
		assert.Equal(t, 40*time.Millisecond, time.Since(start))
		assert.Equal(t, []string{"v"}, tc.stored(t, p[2], "k"))
		synctest.Wait()
	})
}
