package ratelimit

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gcraFactory(l Limit) func() (Limiter, error) {
	return func() (Limiter, error) { return NewGCRA(l, Options{}) }
}

// Each key has its own limit.
func TestKeyed_PerKey(t *testing.T) {
	k, err := NewKeyed(gcraFactory(PerSecond(2)), KeyedOptions{})
	require.NoError(t, err)
	for _, key := range []string{"alice", "bob"} {
		for i := range 3 {
			d, err := k.AllowAt(t0, key, 1)
			require.NoError(t, err)
			assert.Equal(t, i < 2, d.Allowed, "%s event %d", key, i)
		}
	}
	s := k.Stats()
	assert.Equal(t, KeyedStats{Keys: 2, Allowed: 4, Denied: 2}, s)
	assert.Equal(t, []Limit{PerSecond(2)}, k.Limits())
	lim, err := k.Get("alice")
	require.NoError(t, err)
	d, err := lim.ReserveN(t0, 1)
	require.NoError(t, err)
	assert.Equal(t, 500*time.Millisecond, d.RetryAfter, "Get returns the key's own limiter, already empty")
}

func TestKeyed_BadInput(t *testing.T) {
	_, err := NewKeyed(nil, KeyedOptions{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewKeyed(gcraFactory(PerSecond(1)), KeyedOptions{MaxKeys: -1})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "-1")
	_, err = NewKeyed(gcraFactory(PerSecond(1)), KeyedOptions{IdleTimeout: -time.Second})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewKeyed(gcraFactory(Limit{Events: 0, Per: time.Second, Burst: 1}), KeyedOptions{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewKeyed(func() (Limiter, error) { return nil, nil }, KeyedOptions{})
	require.ErrorIs(t, err, ErrInvalidConfig)

	k, err := NewKeyed(gcraFactory(PerSecond(1)), KeyedOptions{})
	require.NoError(t, err)
	_, err = k.AllowN(context.Background(), "", 1)
	require.ErrorIs(t, err, ErrEmptyKey)
	_, err = k.Get("")
	require.ErrorIs(t, err, ErrEmptyKey)
	_, err = k.AllowAt(t0, "a", 2)
	require.ErrorIs(t, err, ErrExceedsLimit)
	assert.False(t, k.Allow(""))

	// A factory that starts failing later: the error reaches the caller.
	calls := 0
	boom := errors.New("boom")
	k, err = NewKeyed(func() (Limiter, error) {
		if calls++; calls > 1 {
			return nil, boom
		}
		return NewGCRA(PerSecond(1), Options{})
	}, KeyedOptions{})
	require.NoError(t, err)
	_, err = k.AllowAt(t0, "x", 1)
	require.ErrorIs(t, err, boom)
	assert.Zero(t, k.Len())
}

// Idle keys are dropped once their limiter has fully recovered (the
// default IdleTimeout), and the hook hears about it outside the lock.
func TestKeyed_IdleExpiry(t *testing.T) {
	var mu sync.Mutex
	evicted := map[string]EvictReason{}
	var k *Keyed
	k, err := NewKeyed(gcraFactory(Limit{Events: 10, Per: time.Second, Burst: 20}), KeyedOptions{
		OnEvict: func(key string, r EvictReason) {
			_ = k.Len() // takes the shard locks: would deadlock if called under one
			mu.Lock()
			evicted[key] = r
			mu.Unlock()
		},
	})
	require.NoError(t, err)
	for i := range 100 {
		_, err := k.AllowAt(t0, "old"+strconv.Itoa(i), 1)
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
		_, _ = k.AllowAt(t0.Add(3*time.Second), "a"+strconv.Itoa(i), 1)
	}
	for i := range 50 {
		_, _ = k.AllowAt(t0.Add(10*time.Second), "b"+strconv.Itoa(i), 1)
	}
	assert.LessOrEqual(t, k.Len(), 50+len(k.shards), "most of the idle a-keys were swept on arrival of b-keys")
}

// MaxKeys bounds the keys; the least recently used go first, so a key in
// constant use survives a flood.
func TestKeyed_MaxKeys(t *testing.T) {
	k, err := NewKeyed(gcraFactory(PerSecond(5)), KeyedOptions{MaxKeys: 256, IdleTimeout: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, 256, k.MaxKeys())
	now := t0
	for i := range 10_000 {
		now = now.Add(time.Microsecond)
		_, err := k.AllowAt(now, "hot", 1)
		require.NoError(t, err)
		_, err = k.AllowAt(now, "flood-"+strconv.Itoa(i), 1)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, k.Len(), 256)
	d, err := k.AllowAt(now, "hot", 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the hot key kept its state: it was never evicted")
	assert.Positive(t, k.Stats().EvictedCapacity)
}

// keyedFloodBound is the memory a Keyed with MaxKeys 10,000 may hold after
// a flood of a million distinct keys: 16 MiB (about 250 B per key is
// needed; the bound leaves room for map growth).
const keyedFloodBound = 16 << 20

// A flood of a million distinct keys (floodKeys; fewer under -race) — a
// botnet, or a scanner rotating source addresses — leaves memory bounded
// by MaxKeys.
func TestKeyed_MillionKeyFloodStaysBounded(t *testing.T) {
	k, err := NewKeyed(gcraFactory(PerSecond(10)), KeyedOptions{MaxKeys: 10_000})
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	buf := make([]byte, 0, 32)
	for i := range floodKeys {
		buf = strconv.AppendInt(append(buf[:0], "198.51."...), int64(i), 10)
		if _, err := k.AllowAt(t0, string(buf), 1); err != nil {
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
	k, err := NewKeyed(gcraFactory(PerSecond(100)), KeyedOptions{MaxKeys: 64})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := "shared"
				if i%2 == 0 {
					key = "k" + strconv.Itoa(g*1000+i)
				}
				_, _ = k.AllowAt(t0, key, 1)
			}
		})
	}
	wg.Wait()
	s := k.Stats()
	assert.EqualValues(t, 4000, s.Allowed+s.Denied)
	assert.LessOrEqual(t, s.Keys, 64)
}

// The factory runs outside the shard's lock, so one that looks at the
// Keyed it feeds (to log its size, say) does not deadlock it.
func TestKeyed_FactoryMayCallBack(t *testing.T) {
	var k *Keyed
	var calls int
	factory := func() (Limiter, error) {
		if k != nil {
			calls++
			_ = k.Len()
			_ = k.Stats()
		}
		return NewGCRA(PerSecond(1), Options{})
	}
	k, err := NewKeyed(factory, KeyedOptions{MaxKeys: 1})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.True(t, k.Allow("alice"))
		_, err := k.Get("bob") // evicts alice to make room
		assert.NoError(t, err)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a factory that calls the Keyed back deadlocked it")
	}
	assert.Equal(t, 2, calls)
	assert.Equal(t, 1, k.Len())
}
