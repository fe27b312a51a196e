package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each key has its own limit.
func TestKeyed_PerKey(t *testing.T) {
	k, err := NewKeyed(AlgGCRA, KeyedOptions{}, PerSecond(2))
	require.NoError(t, err)
	for _, key := range []string{"alice", "bob"} {
		for i := range 3 {
			d, err := k.AllowN(t0, key, 1)
			require.NoError(t, err)
			assert.Equal(t, i < 2, d.Allowed, "%s event %d", key, i)
		}
	}
	s := k.Stats()
	assert.Equal(t, Stats{Keys: 2, Allowed: 4, Denied: 2}, s)
	assert.Equal(t, []Limit{PerSecond(2)}, k.Limits())
	d, err := k.AllowN(t0.Add(499*time.Millisecond), "alice", 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Equal(t, time.Millisecond, d.RetryAfter, "alice's own state: empty at t0, a token 500ms later")
}

// A key of a Keyed decides exactly as a limiter of its own would, for
// every algorithm and for several limits at once, however the keys'
// requests interleave.
func TestKeyed_SameDecisionsAsOneLimiterPerKey(t *testing.T) {
	limits := [][]Limit{{{Events: 5, Per: time.Second, Burst: 3}}, {{Events: 5, Per: time.Second, Burst: 3}, {Events: 20, Per: time.Minute, Burst: 20}}}
	for _, alg := range Algorithms {
		for _, ls := range limits {
			t.Run(fmt.Sprintf("%v/limits=%d", alg, len(ls)), func(t *testing.T) {
				k, err := NewKeyed(alg, KeyedOptions{IdleTimeout: time.Hour}, ls...)
				require.NoError(t, err)
				own := map[string]Limiter{}
				rng := rand.New(rand.NewPCG(1, 2))
				now := t0
				allowed := 0
				for i := range 3000 {
					now = now.Add(time.Duration(rng.IntN(150)) * time.Millisecond)
					key := "k" + strconv.Itoa(rng.IntN(5))
					n := 1 + rng.IntN(2)
					if own[key] == nil {
						if len(ls) == 1 {
							own[key], err = New(alg, ls[0])
						} else {
							own[key], err = NewMulti(alg, ls)
						}
						require.NoError(t, err)
					}
					want, err := own[key].AllowN(now, n)
					require.NoError(t, err)
					got, err := k.AllowN(now, key, n)
					require.NoError(t, err)
					require.Equal(t, want, got, "request %d: %d events for %s at %v", i, n, key, now.Sub(t0))
					if got.Allowed {
						allowed++
					}
				}
				assert.Positive(t, allowed)
				assert.Less(t, allowed, 3000)
			})
		}
	}
}

func TestKeyed_BadInput(t *testing.T) {
	_, err := NewKeyed(AlgGCRA, KeyedOptions{})
	require.ErrorIs(t, err, ErrInvalidConfig, "no limit")
	_, err = NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: -1}, PerSecond(1))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "-1")
	_, err = NewKeyed(AlgGCRA, KeyedOptions{IdleTimeout: -time.Second}, PerSecond(1))
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewKeyed(AlgGCRA, KeyedOptions{}, Limit{Events: 0, Per: time.Second, Burst: 1})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewKeyed(Algorithm(42), KeyedOptions{}, PerSecond(1))
	require.ErrorIs(t, err, ErrInvalidConfig)

	k, err := NewKeyed(AlgGCRA, KeyedOptions{}, PerSecond(1))
	require.NoError(t, err)
	_, err = k.Decide(context.Background(), "", 1)
	require.ErrorIs(t, err, ErrEmptyKey)
	_, err = k.AllowN(t0, "", 1)
	require.ErrorIs(t, err, ErrEmptyKey)
	_, err = k.AllowN(t0, "a", 2)
	require.ErrorIs(t, err, ErrExceedsLimit)
	_, err = k.AllowN(t0, "a", 0)
	require.ErrorIs(t, err, ErrInvalidN)
	assert.False(t, k.Allow(""))
	assert.Zero(t, k.Len(), "a refused request tracks no key")
}

// Idle keys are dropped once their limiter has fully recovered (the
// default IdleTimeout), and the hook hears about it outside the lock.
func TestKeyed_IdleExpiry(t *testing.T) {
	var mu sync.Mutex
	evicted := map[string]EvictReason{}
	var k *Keyed
	k, err := NewKeyed(AlgGCRA, KeyedOptions{
		OnEvict: func(key string, r EvictReason) {
			_ = k.Len() // takes the shard locks: would deadlock if called under one
			mu.Lock()
			evicted[key] = r
			mu.Unlock()
		},
	}, Limit{Events: 10, Per: time.Second, Burst: 20})
	require.NoError(t, err)
	for i := range 100 {
		_, err := k.AllowN(t0, "old"+strconv.Itoa(i), 1)
		require.NoError(t, err)
	}
	// Burst 20 at 10/s recovers in 2s: the default idle timeout.
	k.Sweep(t0.Add(1999 * time.Millisecond))
	assert.Equal(t, 100, k.Len())
	k.Sweep(t0.Add(2 * time.Second))
	assert.Equal(t, 0, k.Len())
	assert.Len(t, evicted, 100)
	assert.Equal(t, EvictIdle, evicted["old7"])
	assert.EqualValues(t, 100, k.Stats().EvictedIdle)
	assert.Equal(t, "idle", EvictIdle.String())
	assert.Equal(t, "capacity", EvictCapacity.String())

	// New keys sweep idle ones as they arrive, without a Sweep call.
	for i := range 50 {
		_, _ = k.AllowN(t0.Add(3*time.Second), "a"+strconv.Itoa(i), 1)
	}
	for i := range 50 {
		_, _ = k.AllowN(t0.Add(10*time.Second), "b"+strconv.Itoa(i), 1)
	}
	assert.LessOrEqual(t, k.Len(), 50+64, "most of the idle a-keys were swept on arrival of b-keys (each of the 64 shards may keep one)")
}

// MaxKeys bounds the keys; the least recently used go first, so a key in
// constant use survives a flood.
func TestKeyed_MaxKeys(t *testing.T) {
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 256, IdleTimeout: time.Hour}, PerSecond(5))
	require.NoError(t, err)
	assert.Equal(t, 256, k.MaxKeys())
	now := t0
	for i := range 10_000 {
		now = now.Add(time.Microsecond)
		_, err := k.AllowN(now, "hot", 1)
		require.NoError(t, err)
		_, err = k.AllowN(now, "flood-"+strconv.Itoa(i), 1)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, k.Len(), 256)
	d, err := k.AllowN(now, "hot", 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the hot key kept its state: it was never evicted")
	assert.Positive(t, k.Stats().EvictedCapacity)
}

// keyedFloodBound is the memory a Keyed with MaxKeys 10,000 may hold after
// a flood of a million distinct keys: 16 MiB (about 60 B per key is
// needed; the bound leaves room for table growth and the keys' bytes).
const keyedFloodBound = 16 << 20

// A flood of a million distinct keys (floodKeys; fewer under -race) — a
// botnet, or a scanner rotating source addresses — leaves memory bounded
// by MaxKeys.
func TestKeyed_MillionKeyFloodStaysBounded(t *testing.T) {
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 10_000}, PerSecond(10))
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	buf := make([]byte, 0, 32)
	for i := range floodKeys {
		buf = strconv.AppendInt(append(buf[:0], "198.51."...), int64(i), 10)
		if _, err := k.AllowN(t0, string(buf), 1); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after %d keys with MaxKeys 10,000: %d KiB (%d B per tracked key)", floodKeys, grown>>10, grown/int64(k.Len()))
	assert.LessOrEqual(t, k.Len(), 10_000)
	assert.Less(t, grown, int64(keyedFloodBound))
	assert.EqualValues(t, floodKeys-k.Len(), k.Stats().EvictedCapacity)
	runtime.KeepAlive(k)
}

// Concurrent callers on shared and distinct keys (run with -race).
func TestKeyed_Concurrent(t *testing.T) {
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 64}, PerSecond(100))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := "shared"
				if i%2 == 0 {
					key = "k" + strconv.Itoa(g*1000+i)
				}
				_, _ = k.AllowN(t0, key, 1)
			}
		})
	}
	wg.Wait()
	s := k.Stats()
	assert.EqualValues(t, 4000, s.Allowed+s.Denied)
	assert.LessOrEqual(t, s.Keys, 64)
}

// OnEvict runs outside the shard's lock, so a hook that looks at the
// Keyed it hears from (to log its size, say) does not deadlock it, when
// a key is evicted for capacity as when it is swept.
func TestKeyed_OnEvictMayCallBack(t *testing.T) {
	var k *Keyed
	var calls int
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 1, OnEvict: func(key string, r EvictReason) {
		calls++
		_ = k.Len()
		_ = k.Stats()
		assert.Equal(t, "alice", key)
		assert.Equal(t, EvictCapacity, r)
	}}, PerSecond(1))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.True(t, k.Allow("alice"))
		assert.True(t, k.Allow("bob")) // evicts alice to make room
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an OnEvict that calls the Keyed back deadlocked it")
	}
	assert.Equal(t, 1, calls)
	assert.Equal(t, 1, k.Len())
}

// Decide and Allow read the Keyed's clock: spent budget refills as it
// moves.
func TestKeyed_Clock(t *testing.T) {
	now := time.Unix(1000, 0)
	k, err := NewKeyed(AlgTokenBucket, KeyedOptions{Now: func() time.Time { return now }}, PerSecond(3))
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 3 {
		d, err := k.Decide(ctx, "a", 1)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "event %d of 3 fits", i+1)
	}
	assert.False(t, k.Allow("a"), "a fourth event finds the budget spent")
	now = now.Add(time.Second)
	d, err := k.Decide(ctx, "a", 3)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the budget refills on the Keyed's clock")
}

// Without KeyedOptions.Now, Decide and Allow read the monotonic clock from
// NewKeyed on: spent budget refills as real time passes.
func TestKeyed_DefaultClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := NewKeyed(AlgGCRA, KeyedOptions{}, PerSecond(2))
		require.NoError(t, err)
		assert.True(t, k.Allow("a"))
		assert.True(t, k.Allow("a"))
		d, err := k.Decide(t.Context(), "a", 1)
		require.NoError(t, err)
		assert.False(t, d.Allowed)
		assert.Equal(t, 500*time.Millisecond, d.RetryAfter)
		time.Sleep(d.RetryAfter)
		assert.True(t, k.Allow("a"), "allowed once RetryAfter has passed")
		assert.False(t, k.Allow("a"))
		// AllowN at time.Now agrees with the Keyed's clock: no steps or
		// slews of the wall clock inside the bubble.
		d, err = k.AllowN(time.Now(), "a", 1)
		require.NoError(t, err)
		assert.Equal(t, 500*time.Millisecond, d.RetryAfter)
	})
}
