package redisbreaker_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/breakertest"
	"github.com/sysdesign-go/sysdesign/resilience/redisbreaker"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func fail(context.Context) (int, error) { return 0, errBoom }
func ok(context.Context) (int, error)   { return 1, nil }

func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

func TestSharedBreaker_AcrossInstances(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		breakertest.SharedBreakerAcrossInstances(t, must(redisbreaker.NewStore(db.Client, db.Prefix)))
	})
}

func TestStore_Rules(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		breakertest.StoreRules(t, must(redisbreaker.NewStore(db.Client, db.Prefix)))
	})
}

// The Redis script and the in-memory store apply the same rules: a long
// random sequence of operations gives the same state after every step.
func TestStore_AgreesWithMemoryStore(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		redisStore := must(redisbreaker.NewStore(db.Client, db.Prefix))
		memStore := sharedbreaker.NewMemoryStore()
		rules := sharedbreaker.Rules{Window: time.Second, Buckets: 4, MinRequests: 3, FailureRate: 0.5, Timeout: 300 * time.Millisecond, HalfOpenRequests: 2}
		rnd := rand.New(rand.NewPCG(1, 2))
		now := time.UnixMilli(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
		ctx := context.Background()
		var gen uint64
		seen := map[resilience.State]int{}
		for step := range 400 {
			now = now.Add(time.Duration(rnd.IntN(120)) * time.Millisecond)
			op := rnd.IntN(10)
			var a, b sharedbreaker.Snapshot
			var okA, okB bool
			var errA, errB error
			switch {
			case op < 3:
				a, okA, errA = memStore.Acquire(ctx, "n", now, rules)
				b, okB, errB = redisStore.Acquire(ctx, "n", now, rules)
			case op < 4:
				a, errA = memStore.Load(ctx, "n", now, rules)
				b, errB = redisStore.Load(ctx, "n", now, rules)
			default:
				o := sharedbreaker.Outcome(rnd.IntN(3))
				g := gen
				if rnd.IntN(8) == 0 && g > 0 {
					g-- // a late result from an older generation
				}
				a, errA = memStore.Record(ctx, "n", g, o, now, rules)
				b, errB = redisStore.Record(ctx, "n", g, o, now, rules)
			}
			require.NoError(t, errA)
			require.NoError(t, errB)
			require.Equal(t, okA, okB, "step %d op %d admission", step, op)
			require.Equal(t, a.State, b.State, "step %d op %d state", step, op)
			require.Equal(t, a.Generation, b.Generation, "step %d op %d generation", step, op)
			require.Equal(t, a.OpenUntil.UnixMilli(), b.OpenUntil.UnixMilli(), "step %d op %d until", step, op)
			gen = a.Generation
			seen[a.State]++
		}
		for _, st := range []resilience.State{resilience.StateClosed, resilience.StateOpen, resilience.StateHalfOpen} {
			assert.Positive(t, seen[st], "the sequence visits %v", st)
		}
		assert.Greater(t, gen, uint64(6), "and makes many transitions")
	})
}

// Many breakers on one store: on the cluster their keys spread over the
// slots (each breaker's two keys on its own tag's slot), and each breaker
// keeps its own state.
func TestStore_ManyBreakersAcrossSlots(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		store := must(redisbreaker.NewStore(db.Client, db.Prefix))
		rules := sharedbreaker.Rules{Window: time.Second, Buckets: 1, MinRequests: 1, FailureRate: 1, Timeout: time.Minute, HalfOpenRequests: 1}
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		slots := map[int64]bool{}
		for i := range 30 {
			name := "dep-" + strconv.Itoa(i)
			if i%2 == 0 {
				st, err := store.Record(ctx, name, 0, sharedbreaker.OutcomeFailure, now, rules)
				require.NoError(t, err)
				require.Equal(t, resilience.StateOpen, st.State, name)
			}
			if db.Cluster {
				state, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{"+name+"}:state").Result()
				require.NoError(t, err)
				counts, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{"+name+"}:counts").Result()
				require.NoError(t, err)
				require.Equal(t, state, counts, "a breaker's two keys share a slot")
				slots[state] = true
			}
		}
		for i := range 30 {
			name := "dep-" + strconv.Itoa(i)
			st, err := store.Load(ctx, name, now, rules)
			require.NoError(t, err)
			want := resilience.StateClosed
			if i%2 == 0 {
				want = resilience.StateOpen
			}
			assert.Equal(t, want, st.State, name)
		}
		if db.Cluster {
			assert.Greater(t, len(slots), 20, "the breakers spread over the cluster's slots")
		}
	})
}

// A prefix or a breaker name that would put a breaker's two keys on
// different Cluster slots is refused with an error naming it, before any
// script runs; so are rules the script cannot bucket.
func TestStore_BadInput(t *testing.T) {
	var nilClient *redis.Client
	_, err := redisbreaker.NewStore(nil, "p:")
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
	_, err = redisbreaker.NewStore(nilClient, "p:")
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)

	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		for _, prefix := range []string{db.Key("{app}:"), db.Key("a{"), db.Key("}")} {
			_, err := redisbreaker.NewStore(db.Client, prefix)
			require.ErrorIs(t, err, resilience.ErrInvalidConfig, prefix)
			assert.ErrorContains(t, err, strconv.Quote(prefix))
			assert.ErrorContains(t, err, "slot")
		}
		store := must(redisbreaker.NewStore(db.Client, db.Prefix))
		rules := sharedbreaker.Rules{Window: time.Second, Buckets: 1, MinRequests: 1, FailureRate: 1, Timeout: time.Second, HalfOpenRequests: 1}
		now := time.Now()
		for _, name := range []string{"", "}x", "a{b}"} {
			_, err := store.Load(ctx, name, now, rules)
			require.ErrorIs(t, err, resilience.ErrInvalidConfig, "name %q", name)
			assert.ErrorContains(t, err, strconv.Quote(name))
			_, _, err = store.Acquire(ctx, name, now, rules)
			require.ErrorIs(t, err, resilience.ErrInvalidConfig, "name %q", name)
			_, err = store.Record(ctx, name, 0, sharedbreaker.OutcomeFailure, now, rules)
			require.ErrorIs(t, err, resilience.ErrInvalidConfig, "name %q", name)
		}
		if db.Cluster {
			// Why: with an empty tag Redis hashes each whole key, and the
			// two keys of the name "}x" land on different slots.
			a, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{}x}:state").Result()
			require.NoError(t, err)
			b, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{}x}:counts").Result()
			require.NoError(t, err)
			require.NotEqual(t, a, b)
		}
		for _, bad := range []sharedbreaker.Rules{{Window: time.Second}, {Window: time.Millisecond, Buckets: 10}} {
			var err error
			require.NotPanics(t, func() { _, err = store.Record(ctx, "x", 0, sharedbreaker.OutcomeFailure, now, bad) })
			assert.ErrorIs(t, err, resilience.ErrInvalidConfig, "%+v", bad)
		}
		// A bucket of exactly one millisecond is the finest there is.
		finest := sharedbreaker.Rules{Window: 10 * time.Millisecond, Buckets: 10, MinRequests: 1, FailureRate: 1, Timeout: time.Second, HalfOpenRequests: 1}
		_, err := store.Record(ctx, "finest", 0, sharedbreaker.OutcomeFailure, now, finest)
		assert.NoError(t, err)
	})
}

// Four instances, each with its own Redis connection, hammer one breaker
// name; when the dependency fails, every instance ends up open.
func TestSharedBreaker_FourInstances(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		clock := breakertest.NewClock()
		var breakers []*sharedbreaker.Breaker[int]
		for range 4 {
			store := must(redisbreaker.NewStore(db.NewClient(t), db.Prefix))
			breakers = append(breakers, must(sharedbreaker.New[int](sharedbreaker.Options{Store: store,
				Name: "inventory", Rules: sharedbreaker.Rules{MinRequests: 20, FailureRate: 0.5, Timeout: time.Minute}, CacheTTL: 10 * time.Millisecond,
				Now: clock.Now,
			})))
		}
		var healthy atomic.Bool
		healthy.Store(true)
		var calls atomic.Int64
		dep := func(context.Context) (int, error) {
			calls.Add(1)
			if healthy.Load() {
				return 1, nil
			}
			return 0, errBoom
		}
		run := func(n int) {
			var wg sync.WaitGroup
			for _, b := range breakers {
				for range 4 {
					wg.Go(func() {
						for range n {
							_, _ = b.Execute(context.Background(), dep)
						}
					})
				}
			}
			wg.Wait()
		}
		run(10)
		for _, b := range breakers {
			assert.Equal(t, resilience.StateClosed, b.Stats().State)
		}
		healthy.Store(false)
		run(25)
		before := calls.Load()
		clock.Advance(20 * time.Millisecond) // every cache expires
		run(5)
		for i, b := range breakers {
			assert.Equal(t, resilience.StateOpen, b.State(context.Background()), "instance %d", i)
			assert.Positive(t, b.Stats().Rejected, "instance %d short-circuits", i)
		}
		assert.Equal(t, before, calls.Load(), "no instance calls the dependency once open")
	})
}

// When the link to Redis goes dark, the shared breaker fails open within
// its StoreTimeout (calls go on, errors are counted), and picks the shared
// state up again when the link comes back. (A proxy stands in front of
// one node, so this runs on the single node.)
func TestSharedBreaker_SurvivesRedisOutage(t *testing.T) {
	db := redistest.New(t)
	proxy, err := tcpproxy.New(db.Addr)
	require.NoError(t, err)
	defer proxy.Close()
	// No read or write timeout of the client's own: only StoreTimeout
	// can end a call to the dark link.
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: -1, WriteTimeout: -1, ContextTimeoutEnabled: true})
	defer client.Close()
	store := must(redisbreaker.NewStore(client, db.Prefix))
	opts := sharedbreaker.Options{Name: "search", Rules: sharedbreaker.Rules{MinRequests: 2, FailureRate: 0.5}, CacheTTL: time.Nanosecond, StoreTimeout: 50 * time.Millisecond}
	opts.Store = store
	b := must(sharedbreaker.New[int](opts))
	ctx := context.Background()
	_, err = b.Execute(ctx, ok)
	require.NoError(t, err)

	errorsBefore := b.Stats().StoreErrors
	proxy.Blackhole()
	type result struct {
		v   int
		err error
	}
	done := make(chan result, 1)
	go func() { v, err := b.Execute(ctx, ok); done <- result{v, err} }()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Execute still waits on the dark link: StoreTimeout does not bound the store calls")
	}
	require.NoError(t, r.err, "the breaker fails open: Redis is not the protected dependency")
	assert.Equal(t, 1, r.v)
	assert.Equal(t, errorsBefore+2, b.Stats().StoreErrors, "Acquire and Record both timed out")

	proxy.Restore()
	// Another instance on a healthy link trips the shared breaker...
	opts.Store = must(redisbreaker.NewStore(db.Client, db.Prefix))
	other := must(sharedbreaker.New[int](opts))
	for range 2 {
		_, _ = other.Execute(ctx, fail)
	}
	require.Equal(t, resilience.StateOpen, other.State(ctx))
	// ...and the first instance sees it once its link works again.
	require.Eventually(t, func() bool {
		_, err := b.Execute(ctx, ok)
		return errors.Is(err, resilience.ErrOpen)
	}, 5*time.Second, 10*time.Millisecond)
}

// A Store its constructor did not make fails clearly.
func TestZeroValuesFailClearly(t *testing.T) {
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Store.Load": func() error {
			var s redisbreaker.Store
			_, err := s.Load(ctx, "b", time.Now(), sharedbreaker.Rules{})
			return err
		},
		"nil Store.Acquire": func() error {
			var s *redisbreaker.Store
			_, _, err := s.Acquire(ctx, "b", time.Now(), sharedbreaker.Rules{})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call() })
			require.ErrorIs(t, err, resilience.ErrInvalidConfig)
			assert.ErrorContains(t, err, "not made by")
		})
	}
}
