package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
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
// requests interleave and wherever the clock steps back. (A keyed token
// bucket keeps GCRA's form: this is where it must decide as a
// TokenBucket does.)
func TestKeyed_SameDecisionsAsOneLimiterPerKey(t *testing.T) {
	// The last quota does not fit in 32 bits, where a keyed sliding window
	// keeps 64-bit counters; requests there take a scale of its units at
	// once.
	const big = 1 << 31
	limits := []struct {
		ls    []Limit
		scale int
	}{
		{[]Limit{{Events: 5, Per: time.Second, Burst: 3}}, 1},
		{[]Limit{{Events: 5, Per: time.Second, Burst: 3}, {Events: 20, Per: time.Minute, Burst: 20}}, 1},
		{[]Limit{{Events: 5 * big, Per: time.Minute, Burst: 3 * big}}, big},
	}
	for _, alg := range Algorithms {
		for _, c := range limits {
			ls := c.ls
			if alg == AlgSlidingLog && c.scale > 1 {
				continue // it keeps a timestamp per event: a request of 2³¹ events logs 16 GB
			}
			t.Run(fmt.Sprintf("%v/limits=%d/scale=%d", alg, len(ls), c.scale), func(t *testing.T) {
				k, err := NewKeyed(alg, KeyedOptions{IdleTimeout: time.Hour}, ls...)
				require.NoError(t, err)
				own := map[string]Limiter{}
				rng := rand.New(rand.NewPCG(1, 2))
				now := t0
				allowed := 0
				for i := range 3000 {
					now = now.Add(time.Duration(rng.IntN(150)) * time.Millisecond)
					if rng.IntN(8) == 0 {
						// Another goroutine's earlier clock reading.
						now = now.Add(-time.Duration(rng.IntN(100)) * time.Millisecond)
					}
					key := "k" + strconv.Itoa(rng.IntN(5))
					n := (1 + rng.IntN(2)) * c.scale
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
	_, err = k.Decide(context.Background(), "a", -1)
	require.ErrorIs(t, err, ErrInvalidN)
	assert.Contains(t, err.Error(), "-1")
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
		_, err := k.AllowN(t0.Add(3*time.Second), "a"+strconv.Itoa(i), 1)
		require.NoError(t, err)
	}
	for i := range 50 {
		_, err := k.AllowN(t0.Add(10*time.Second), "b"+strconv.Itoa(i), 1)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, k.Len(), 50+64, "most of the idle a-keys were swept on arrival of b-keys (each of the 64 shards may keep one)")
}

// MaxKeys bounds the keys; a flood of new keys evicts the least recently
// used ones, never a key in constant use, whatever the bound.
func TestKeyed_MaxKeys(t *testing.T) {
	for _, maxKeys := range []int{2, 10, 100, 256, 5000} {
		t.Run(strconv.Itoa(maxKeys), func(t *testing.T) {
			hotEvicted := 0 // OnEvict runs on the goroutine that called AllowN
			k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: maxKeys, IdleTimeout: time.Hour, OnEvict: func(key string, r EvictReason) {
				assert.Equal(t, EvictCapacity, r, key)
				if key == "hot" {
					hotEvicted++
				}
			}}, PerSecond(5))
			require.NoError(t, err)
			now := t0
			for i := range 10_000 {
				now = now.Add(time.Microsecond)
				_, err := k.AllowN(now, "hot", 1)
				require.NoError(t, err)
				_, err = k.AllowN(now, "flood-"+strconv.Itoa(i), 1)
				require.NoError(t, err)
			}
			assert.Zero(t, hotEvicted, "the key in constant use is never evicted")
			assert.Equal(t, k.MaxKeys(), k.Len(), "the flood fills every shard to its share")
			assert.EqualValues(t, 10_001-k.Len(), k.Stats().EvictedCapacity, "every key not held was evicted")
			d, err := k.AllowN(now, "hot", 1)
			require.NoError(t, err)
			assert.False(t, d.Allowed)
			// The hot key's state dates from its first event: a burst of
			// 5 from t0+1µs, the sixth fits one interval (200ms) after it.
			assert.Equal(t, t0.Add(time.Microsecond+200*time.Millisecond).Sub(now), d.RetryAfter)
		})
	}
}

// MaxKeys is shared out among the shards, rounded down to a multiple of
// their number, each shard holding at least 8 keys; MaxKeys reports the
// bound in force.
func TestKeyed_MaxKeysRounding(t *testing.T) {
	for asked, want := range map[int]int{1: 1, 2: 2, 10: 10, 16: 16, 100: 96, 1000: 960, 2000: 1984, 0: 99_968} {
		k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: asked}, PerSecond(1))
		require.NoError(t, err)
		assert.Equal(t, want, k.MaxKeys(), "MaxKeys %d", asked)
	}
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 1}, PerSecond(1))
	require.NoError(t, err)
	assert.True(t, k.Allow("a"))
	assert.False(t, k.Allow("a"))
	assert.True(t, k.Allow("b"), "b evicts a")
	assert.True(t, k.Allow("a"), "a starts afresh")
	assert.Equal(t, 1, k.Len())
}

// A full shard of up to 8 keys evicts exactly the least recently used.
func TestKeyed_EvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 8, IdleTimeout: time.Hour, OnEvict: func(key string, _ EvictReason) {
		evicted = append(evicted, key)
	}}, PerSecond(5))
	require.NoError(t, err)
	now := t0
	use := func(key string) {
		t.Helper()
		now = now.Add(time.Millisecond)
		_, err := k.AllowN(now, key, 1)
		require.NoError(t, err)
	}
	for i := range 8 {
		use("k" + strconv.Itoa(i))
	}
	for _, key := range []string{"k0", "k5", "k2", "k7"} {
		use(key)
	}
	// Least recently used first: k1, k3, k4, k6, then k0, k5, ...
	for i := range 6 {
		use("new" + strconv.Itoa(i))
	}
	assert.Equal(t, []string{"k1", "k3", "k4", "k6", "k0", "k5"}, evicted)
}

// In tables of many shards eviction samples 8 keys, so it drops mostly,
// not only, the least recently used: a wave of new keys evicts keys
// unused since the table filled far more than keys used since.
func TestKeyed_EvictsMostlyStaleKeys(t *testing.T) {
	stale, recent := 0, 0
	k, err := NewKeyed(AlgGCRA, KeyedOptions{MaxKeys: 2048, IdleTimeout: time.Hour, OnEvict: func(key string, _ EvictReason) {
		if strings.HasPrefix(key, "stale") {
			stale++
		} else {
			recent++
		}
	}}, PerSecond(5))
	require.NoError(t, err)
	now := t0
	for _, wave := range []string{"stale", "used", "new"} {
		if wave == "new" {
			stale, recent = 0, 0
		}
		for i := range 1024 {
			now = now.Add(time.Microsecond)
			_, err := k.AllowN(now, wave+strconv.Itoa(i), 1)
			require.NoError(t, err)
		}
	}
	t.Logf("the new wave evicted %d stale and %d recent keys", stale, recent)
	// Measured: 2.4 to 3 stale keys for each recent one; evicting the
	// most recent of each sample would give about 1 for 20.
	assert.Greater(t, 2*stale, 3*recent)
}

// A key in constant use is never dropped as idle, by Sweep or by the
// sweeps new keys trigger, and keeps its state throughout.
func TestKeyed_KeyInUseIsNeverIdle(t *testing.T) {
	var idle []string
	k, err := NewKeyed(AlgTokenBucket, KeyedOptions{IdleTimeout: time.Second, OnEvict: func(key string, r EvictReason) {
		if r == EvictIdle {
			idle = append(idle, key)
		}
	}}, Limit{Events: 5, Per: time.Second, Burst: 5})
	require.NoError(t, err)
	own, err := NewTokenBucket(Limit{Events: 5, Per: time.Second, Burst: 5})
	require.NoError(t, err)
	for i := range 400 { // 40s at 10 requests a second, twice the rate
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		want, err := own.AllowN(now, 1)
		require.NoError(t, err)
		got, err := k.AllowN(now, "busy", 1)
		require.NoError(t, err)
		require.Equal(t, want, got, "request %d", i)
		for j := range 20 { // newcomers, which sweep the shards they land in
			_, err := k.AllowN(now, "visitor-"+strconv.Itoa(i*20+j), 1)
			require.NoError(t, err)
		}
		if i%10 == 9 {
			k.Sweep(now)
		}
	}
	assert.NotContains(t, idle, "busy")
	assert.GreaterOrEqual(t, len(idle), 7000, "the visitors went idle and were swept")
}

// A newcomer sweeps its shard once a quarter of the idle timeout has
// passed since the shard's last sweep: keys idle for the timeout are gone
// the instant new keys arrive, with no Sweep call.
func TestKeyed_ArrivalsSweepIdleKeys(t *testing.T) {
	idle := map[string]bool{}
	k, err := NewKeyed(AlgGCRA, KeyedOptions{IdleTimeout: time.Second, OnEvict: func(key string, r EvictReason) {
		assert.Equal(t, EvictIdle, r)
		idle[key] = true
	}}, PerSecond(5))
	require.NoError(t, err)
	wave := func(name string, at time.Duration) {
		t.Helper()
		for i := range 5000 { // about 80 per shard: every shard gets some
			_, err := k.AllowN(t0.Add(at), name+strconv.Itoa(i), 1)
			require.NoError(t, err)
		}
	}
	wave("a", 0)
	wave("b", 750*time.Millisecond) // sweeps every shard: nothing idle yet
	assert.Empty(t, idle)
	assert.Equal(t, 10_000, k.Len())
	wave("c", time.Second) // a quarter of the timeout since: sweeps again
	assert.Len(t, idle, 5000, "every a-key, idle for exactly the timeout, is gone")
	assert.True(t, idle["a0"])
	assert.Equal(t, 10_000, k.Len())
}

// keyedFloodBound is the memory a Keyed with MaxKeys 10,000 may hold after
// a flood of a million distinct keys: 1 MiB. Its table is 64 shards of
// 256 slots of 32 bytes (a key of up to 15 bytes, its last use and a
// GCRA's timestamp), 512 KiB; the bound leaves room for the rest and
// catches an object per key or a table grown twice too far.
const keyedFloodBound = 1 << 20

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
				if _, err := k.AllowN(t0, key, 1); !assert.NoError(t, err) {
					return
				}
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
	assert.True(t, k.Allow("b"), "another key has a budget of its own")
	assert.True(t, k.Allow("b"))
	assert.True(t, k.Allow("b"))
	assert.False(t, k.Allow("b"))
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
