package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// breakerStores returns every BreakerStore implementation, the Redis one
// when a server is reachable.
func breakerStores(t *testing.T) map[string]BreakerStore {
	stores := map[string]BreakerStore{"memory": NewMemoryBreakerStore()}
	if testing.Short() {
		return stores
	}
	db := redistest.New(t)
	stores["redis"] = must(NewRedisBreakerStore(db.Client, db.Prefix))
	return stores
}

func TestSharedBreakerAcrossInstances(t *testing.T) {
	for name, store := range breakerStores(t) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			var mu sync.Mutex
			var seen []StateChange
			opts := SharedBreakerOptions{
				Name: "payments", Rules: BreakerRules{MinRequests: 4, FailureRate: 0.5, Timeout: time.Second, HalfOpenRequests: 1},
				CacheTTL: time.Millisecond, Now: clock.Now,
			}
			a := must(NewSharedBreaker[int](store, opts))
			opts.OnStateChange = func(c StateChange) { mu.Lock(); seen = append(seen, c); mu.Unlock() }
			b := must(NewSharedBreaker[int](store, opts))
			ctx := context.Background()

			for _, fn := range []func(context.Context) (int, error){ok, ok, fail} {
				_, _ = a.Execute(ctx, fn)
			}
			assert.Equal(t, StateClosed, a.State(ctx), "1 failure in 3 calls, below the minimum volume")
			_, _ = a.Execute(ctx, fail) // 2 of 4
			assert.Equal(t, StateOpen, a.Stats().State, "the instance that tripped it knows at once")

			clock.Advance(2 * time.Millisecond) // b's cache expires
			called := false
			_, err := b.Execute(ctx, func(context.Context) (int, error) { called = true; return 0, nil })
			assert.ErrorIs(t, err, ErrOpen, "another instance sees the shared open state")
			assert.False(t, called)
			assert.Contains(t, err.Error(), `breaker "payments"`)

			// After the timeout one probe goes, from whichever instance asks first.
			clock.Advance(time.Second)
			release := make(chan struct{})
			probeDone := make(chan error)
			go func() {
				_, err := a.Execute(ctx, func(context.Context) (int, error) { <-release; return 1, nil })
				probeDone <- err
			}()
			require.Eventually(t, func() bool { return a.Stats().State == StateHalfOpen }, 5*time.Second, time.Millisecond)
			_, err = b.Execute(ctx, ok)
			assert.ErrorIs(t, err, ErrOpen, "only one probe while half-open")
			close(release)
			require.NoError(t, <-probeDone)
			assert.Equal(t, StateClosed, a.Stats().State)
			clock.Advance(2 * time.Millisecond)
			v, err := b.Execute(ctx, ok)
			require.NoError(t, err)
			assert.Equal(t, 1, v)
			assert.Equal(t, StateClosed, b.State(ctx))

			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, seen)
			assert.Equal(t, StateOpen, seen[0].To, "b observed the open state")
			assert.Equal(t, StateClosed, seen[len(seen)-1].To)
		})
	}
}

func TestSharedBreakerStoreRules(t *testing.T) {
	rules := BreakerRules{Window: 10 * time.Second, Buckets: 10, MinRequests: 2, FailureRate: 0.5, Timeout: time.Second, HalfOpenRequests: 2}
	for name, store := range breakerStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			st, ok, err := store.Acquire(ctx, "x", now, rules)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, SharedState{State: StateClosed}, st)

			// Old failures leave the window.
			_, err = store.Record(ctx, "x", 0, OutcomeFailure, now, rules)
			require.NoError(t, err)
			now = now.Add(11 * time.Second)
			for range 2 {
				_, err = store.Record(ctx, "x", 0, OutcomeSuccess, now, rules)
				require.NoError(t, err)
			}
			st, err = store.Record(ctx, "x", 0, OutcomeFailure, now, rules)
			require.NoError(t, err)
			assert.Equal(t, StateClosed, st.State, "1 failure in 3 recent calls")
			st, err = store.Record(ctx, "x", 0, OutcomeFailure, now, rules)
			require.NoError(t, err)
			require.Equal(t, StateOpen, st.State)
			assert.Equal(t, uint64(1), st.Generation)
			assert.Equal(t, now.Add(time.Second).UnixMilli(), st.OpenUntil.UnixMilli())

			// A late result from generation 0 changes nothing.
			st2, err := store.Record(ctx, "x", 0, OutcomeSuccess, now, rules)
			require.NoError(t, err)
			assert.Equal(t, st.Generation, st2.Generation)
			_, ok, err = store.Acquire(ctx, "x", now.Add(999*time.Millisecond), rules)
			require.NoError(t, err)
			assert.False(t, ok)

			// Half-open: two probes; an excluded one gives its slot back.
			now = now.Add(time.Second)
			for i := range 2 {
				st, ok, err = store.Acquire(ctx, "x", now, rules)
				require.NoError(t, err)
				assert.True(t, ok, "probe %d", i)
				assert.Equal(t, StateHalfOpen, st.State)
			}
			_, ok, _ = store.Acquire(ctx, "x", now, rules)
			assert.False(t, ok)
			_, err = store.Record(ctx, "x", st.Generation, OutcomeExcluded, now, rules)
			require.NoError(t, err)
			_, ok, _ = store.Acquire(ctx, "x", now, rules)
			assert.True(t, ok, "the excluded probe's slot was given back")
			st, _ = store.Record(ctx, "x", st.Generation, OutcomeSuccess, now, rules)
			assert.Equal(t, StateHalfOpen, st.State)
			st, _ = store.Record(ctx, "x", st.Generation, OutcomeSuccess, now, rules)
			assert.Equal(t, StateClosed, st.State)
			assert.Equal(t, uint64(3), st.Generation)

			// Probes that never report lose their lease after Timeout.
			for range 2 {
				_, _ = store.Record(ctx, "x", st.Generation, OutcomeFailure, now, rules)
			}
			now = now.Add(time.Second)
			for range 2 {
				_, ok, _ = store.Acquire(ctx, "x", now, rules)
				assert.True(t, ok)
			}
			_, ok, _ = store.Acquire(ctx, "x", now.Add(500*time.Millisecond), rules)
			assert.False(t, ok)
			st, ok, _ = store.Acquire(ctx, "x", now.Add(time.Second), rules)
			assert.True(t, ok, "lease expired")
			st, _ = store.Record(ctx, "x", st.Generation, OutcomeFailure, now.Add(time.Second), rules)
			assert.Equal(t, StateOpen, st.State, "a failed probe reopens")
			loaded, err := store.Load(ctx, "x", now.Add(time.Second), rules)
			require.NoError(t, err)
			assert.Equal(t, st, loaded)
		})
	}
}

func TestSharedBreakerFailsOpenWhenStoreFails(t *testing.T) {
	b := must(NewSharedBreaker[int](brokenStore{}, SharedBreakerOptions{Name: "x"}))
	for range 3 {
		v, err := b.Execute(context.Background(), ok)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	}
	st := b.Stats()
	assert.Equal(t, uint64(6), st.StoreErrors)
	assert.Equal(t, StateClosed, b.State(context.Background()))
}

type brokenStore struct{}

var errStore = errors.New("store down")

func (brokenStore) Load(context.Context, string, time.Time, BreakerRules) (SharedState, error) {
	return SharedState{}, errStore
}
func (brokenStore) Acquire(context.Context, string, time.Time, BreakerRules) (SharedState, bool, error) {
	return SharedState{}, false, errStore
}
func (brokenStore) Record(context.Context, string, uint64, Outcome, time.Time, BreakerRules) (SharedState, error) {
	return SharedState{}, errStore
}

func TestSharedBreakerBadInput(t *testing.T) {
	store := NewMemoryBreakerStore()
	for _, o := range []SharedBreakerOptions{
		{}, {Name: "a{b}"}, {Name: "x", Rules: BreakerRules{Window: -1}}, {Name: "x", Rules: BreakerRules{Buckets: -1}},
		{Name: "x", Rules: BreakerRules{Window: time.Millisecond, Buckets: 10}}, {Name: "x", Rules: BreakerRules{MinRequests: -1}},
		{Name: "x", Rules: BreakerRules{FailureRate: 2}}, {Name: "x", Rules: BreakerRules{Timeout: -1}}, {Name: "x", Rules: BreakerRules{HalfOpenRequests: -1}},
		{Name: "x", CacheTTL: -1}, {Name: "x", SlowCallThreshold: -1},
	} {
		_, err := NewSharedBreaker[int](store, o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
	_, err := NewSharedBreaker[int](nil, SharedBreakerOptions{Name: "x"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewRedisBreakerStore(nil, "")
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// Four instances, each with its own Redis connection, hammer one breaker
// name; when the dependency fails, every instance ends up open.
func TestSharedBreakerFourInstancesOnRedis(t *testing.T) {
	db := redistest.New(t)
	var breakers []*SharedBreaker[int]
	for range 4 {
		store := must(NewRedisBreakerStore(db.NewClient(t), db.Prefix))
		breakers = append(breakers, must(NewSharedBreaker[int](store, SharedBreakerOptions{
			Name: "inventory", Rules: BreakerRules{MinRequests: 20, FailureRate: 0.5, Timeout: time.Minute}, CacheTTL: 10 * time.Millisecond,
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
		assert.Equal(t, StateClosed, b.Stats().State)
	}
	healthy.Store(false)
	run(25)
	before := calls.Load()
	time.Sleep(20 * time.Millisecond) // every cache expires
	run(5)
	for i, b := range breakers {
		assert.Equal(t, StateOpen, b.State(context.Background()), "instance %d", i)
		assert.Positive(t, b.Stats().Rejected, "instance %d short-circuits", i)
	}
	assert.Equal(t, before, calls.Load(), "no instance calls the dependency once open")
}

// gobreaker's own distributed breaker on the RedisDataStore: two instances
// share state through one lock and one JSON value.
func TestGobreakerDistributedBreakerOnRedis(t *testing.T) {
	db := redistest.New(t)
	newDCB := func() *gobreaker.DistributedCircuitBreaker[int] {
		store := must(NewRedisDataStore(db.NewClient(t), RedisDataStoreOptions{Prefix: db.Prefix}))
		return must(gobreaker.NewDistributedCircuitBreaker[int](store, gobreaker.Settings{
			Name: "inventory", Timeout: time.Minute,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
		}))
	}
	a, b := newDCB(), newDCB()
	for range 3 {
		_, err := a.Execute(func() (int, error) { return 0, errBoom })
		require.ErrorIs(t, err, errBoom)
	}
	st, err := b.State()
	require.NoError(t, err)
	assert.Equal(t, StateOpen, st)
	_, err = b.Execute(func() (int, error) { return 1, nil })
	assert.ErrorIs(t, err, gobreaker.ErrOpenState)

	// The lock is exclusive across stores and released by its holder only.
	s1 := must(NewRedisDataStore(db.Client, RedisDataStoreOptions{Prefix: db.Prefix, LockWait: 20 * time.Millisecond}))
	s2 := must(NewRedisDataStore(db.Client, RedisDataStoreOptions{Prefix: db.Prefix, LockWait: 20 * time.Millisecond}))
	require.NoError(t, s1.Lock("m"))
	assert.ErrorIs(t, s2.Lock("m"), ErrLockHeld)
	require.NoError(t, s2.Unlock("m")) // not the holder: no effect
	assert.ErrorIs(t, s2.Lock("m"), ErrLockHeld)
	require.NoError(t, s1.Unlock("m"))
	require.NoError(t, s2.Lock("m"))
	require.NoError(t, s2.Unlock("m"))
}

// When the link to Redis goes dark, the shared breaker fails open within
// its StoreTimeout (calls go on, errors are counted), and picks the shared
// state up again when the link comes back.
func TestSharedBreakerSurvivesRedisOutage(t *testing.T) {
	db := redistest.New(t)
	proxy, err := tcpproxy.New(db.Addr)
	require.NoError(t, err)
	defer proxy.Close()
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	defer client.Close()
	store := must(NewRedisBreakerStore(client, db.Prefix))
	opts := SharedBreakerOptions{Name: "search", Rules: BreakerRules{MinRequests: 2, FailureRate: 0.5}, CacheTTL: time.Nanosecond, StoreTimeout: 50 * time.Millisecond}
	b := must(NewSharedBreaker[int](store, opts))
	ctx := context.Background()
	_, err = b.Execute(ctx, ok)
	require.NoError(t, err)

	proxy.Blackhole()
	start := time.Now()
	v, err := b.Execute(ctx, ok)
	require.NoError(t, err, "the breaker fails open: Redis is not the protected dependency")
	assert.Equal(t, 1, v)
	assert.Less(t, time.Since(start), 2*time.Second, "each store call is bounded by StoreTimeout")
	assert.Positive(t, b.Stats().StoreErrors)

	proxy.Restore()
	// Another instance on a healthy link trips the shared breaker...
	other := must(NewSharedBreaker[int](must(NewRedisBreakerStore(db.Client, db.Prefix)), opts))
	for range 2 {
		_, _ = other.Execute(ctx, fail)
	}
	require.Equal(t, StateOpen, other.State(ctx))
	// ...and the first instance sees it once its link works again.
	require.Eventually(t, func() bool {
		_, err := b.Execute(ctx, ok)
		return errors.Is(err, ErrOpen)
	}, 5*time.Second, 10*time.Millisecond)
}

// The Redis scripts and the in-memory store apply the same rules: a long
// random sequence of operations gives the same state after every step.
func TestBreakerStoresAgree(t *testing.T) {
	db := redistest.New(t)
	redisStore := must(NewRedisBreakerStore(db.Client, db.Prefix))
	memStore := NewMemoryBreakerStore()
	rules := BreakerRules{Window: time.Second, Buckets: 4, MinRequests: 3, FailureRate: 0.5, Timeout: 300 * time.Millisecond, HalfOpenRequests: 2}
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.UnixMilli(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	ctx := context.Background()
	var gen uint64
	seen := map[State]int{}
	for step := range 400 {
		now = now.Add(time.Duration(rnd.IntN(120)) * time.Millisecond)
		op := rnd.IntN(10)
		var a, b SharedState
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
			o := Outcome(rnd.IntN(3))
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
	for _, st := range []State{StateClosed, StateOpen, StateHalfOpen} {
		assert.Positive(t, seen[st], "the sequence visits %v", st)
	}
	assert.Greater(t, gen, uint64(6), "and makes many transitions")
}
