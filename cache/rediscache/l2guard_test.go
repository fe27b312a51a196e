package rediscache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// A blackholed Redis (connections held, bytes dropped) is left alone after
// a few failures: a read that misses L1 goes to the source without waiting
// for the Redis timeout, and L2 serves again once Redis answers and the
// breaker lets a probe through.
func TestMultiLevelBlackholedRedisIsLeftAlone(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		m := newLevels(t, db, client, MultiLevelOptions{})
		a, err := cache.NewAside[string, int](m, cache.AsideOptions{TTL: time.Minute})
		require.NoError(t, err)
		ctx := t.Context()
		load := cache.LoaderFunc[string, int](func(_ context.Context, k string) (int, error) { return len(k), nil })
		require.NoError(t, db.Client.Set(ctx, db.Key("warm"), "7", time.Minute).Err())

		p.Blackhole()
		for i := range 5 { // each waits out the timeout until the breaker opens
			_, err := a.Get(ctx, fmt.Sprint("cold", i), load)
			require.NoError(t, err)
		}
		errs := m.Stats().L2Errors
		require.Positive(t, errs)
		for i := range 20 {
			v, err := a.Get(ctx, fmt.Sprint("other", i), load)
			require.NoError(t, err)
			assert.Equal(t, len(fmt.Sprint("other", i)), v, "served by the source")
		}
		// No call reached the blackholed Redis, so none waited for its
		// timeout: counted, not timed, so a busy machine cannot fail it.
		assert.Equal(t, errs, m.Stats().L2Errors, "no call reached the blackholed Redis")

		p.Restore()
		hits := m.Stats().L2Hits
		// The breaker lets a probe through after BreakFor; the deadline
		// only bounds a broken run, however busy the machine.
		require.Eventually(t, func() bool {
			m.l1.Delete("warm")
			v, _, ok, err := m.Get(ctx, "warm")
			return err == nil && ok && v == 7 && m.Stats().L2Hits > hits
		}, 10*time.Second, 5*time.Millisecond, "L2 serves again once Redis answers")
	})
}

// An L2 write that failed leaves Redis with the old value. It is never
// served after Redis returns, and the next call that reaches Redis deletes
// it there; the same for a deletion by prefix that failed.
func TestMultiLevelNoStaleL2AfterOutage(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		m := newLevels(t, db, client, MultiLevelOptions{})
		ctx := t.Context()
		require.NoError(t, m.Set(ctx, "k", 1, time.Minute))
		require.NoError(t, m.Set(ctx, "grp:1", 1, time.Minute))
		require.NoError(t, m.Set(ctx, "keep", 5, time.Minute))

		p.Cut()
		require.Error(t, m.Set(ctx, "k", 2, time.Minute), "L2 did not get the write")
		_, err := m.DeletePrefix(ctx, "grp:")
		require.Error(t, err)
		p.Restore()

		m.l1.Delete("k") // evicted from L1: the next lookup asks L2
		v, _, ok, err := m.Get(ctx, "k")
		require.NoError(t, err, "Redis answers again")
		assert.False(t, ok && v == 1, "the value the failed write replaced is not served")
		_, _, ok, err = m.Get(ctx, "grp:1")
		require.NoError(t, err)
		assert.False(t, ok, "a key the failed DeletePrefix should have removed is not served")

		require.Eventually(t, func() bool {
			m.l1.Delete("keep")
			_, _, _, _ = m.Get(ctx, "keep")
			return db.Client.Exists(ctx, db.Key("k")).Val()+db.Client.Exists(ctx, db.Key("grp:1")).Val() == 0
		}, 2*time.Second, 10*time.Millisecond, "the stale entries were deleted from Redis")
		m.l1.Delete("keep")
		v, _, ok, err = m.Get(ctx, "keep")
		require.NoError(t, err)
		assert.True(t, ok && v == 5, "untouched keys are still served from L2")
		assert.Zero(t, m.Stats().L2Unrepaired)
	})
}

// The breaker's state is in Stats and reported to OnL2State in order;
// while it is open, writes update L1 and say L2 was skipped; with a
// negative BreakAfter there is no breaker.
func TestMultiLevelBreakerStateAndOptions(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		var mu sync.Mutex
		var changes []string
		m := newLevels(t, db, client, MultiLevelOptions{BreakAfter: 2, BreakFor: 50 * time.Millisecond,
			OnL2State: func(from, to gobreaker.State) {
				mu.Lock()
				changes = append(changes, from.String()+">"+to.String())
				mu.Unlock()
			}})
		ctx := t.Context()
		assert.Equal(t, gobreaker.StateClosed, m.Stats().L2State)
		p.Cut()
		_, _, _, _ = m.Get(ctx, "a")
		_, _, _, _ = m.Get(ctx, "b")
		assert.Equal(t, gobreaker.StateOpen, m.Stats().L2State)
		err := m.Set(ctx, "c", 3, time.Minute)
		require.ErrorIs(t, err, ErrL2Open)
		v, ok := m.l1.Get("c")
		assert.True(t, ok && v == 3, "L1 has the write")
		st := m.Stats()
		assert.Equal(t, uint64(1), st.L2Skipped)
		assert.Equal(t, 1, st.L2Unrepaired, "c missed its L2 write")

		p.Restore()
		require.Eventually(t, func() bool {
			m.l1.Delete("x")
			_, _, _, _ = m.Get(ctx, "x")
			return m.Stats().L2State == gobreaker.StateClosed
		}, 2*time.Second, 10*time.Millisecond)
		assert.Zero(t, m.Stats().L2Unrepaired, "the probe repaired L2")
		mu.Lock()
		require.GreaterOrEqual(t, len(changes), 3)
		assert.Equal(t, []string{"closed>open", "open>half-open"}, changes[:2])
		assert.Equal(t, "half-open>closed", changes[len(changes)-1])
		mu.Unlock()

		off := newLevels(t, db, client, MultiLevelOptions{BreakAfter: -1})
		p.Cut()
		for i := range 8 {
			_, _, _, _ = off.Get(ctx, fmt.Sprint("k", i))
		}
		st = off.Stats()
		assert.Equal(t, gobreaker.StateClosed, st.L2State)
		assert.Equal(t, uint64(8), st.L2Errors, "every call went to Redis")
		assert.Zero(t, st.L2Skipped)
		p.Restore()

		l1, err := cache.NewMemory(10, cache.MemoryOptions[string, int]{})
		require.NoError(t, err)
		l2, err := New[int](client, Options{})
		require.NoError(t, err)
		_, err = NewMultiLevel(ctx, l1, l2, MultiLevelOptions{BreakFor: -time.Second})
		require.ErrorIs(t, err, cache.ErrInvalidConfig)
	})
}

// OnL2State may call the cache: the state changes its own call causes
// (here the probe that BreakFor lets through at once, and that fails) are
// delivered when it returns, in order, none lost.
func TestMultiLevelStateHookMayCallTheCache(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		ctx := t.Context()
		var m *MultiLevel[int]
		var changes []string // appended to by the one goroutine below, in its calls
		m = newLevels(t, db, client, MultiLevelOptions{BreakAfter: 1, BreakFor: time.Nanosecond,
			OnL2State: func(from, to gobreaker.State) {
				changes = append(changes, from.String()+">"+to.String())
				if len(changes) == 1 {
					_, _, ok, err := m.Get(ctx, "b")
					assert.False(t, ok)
					assert.NoError(t, err, "an L2 failure is a miss")
				}
			}})
		p.Cut()
		_, _, ok, err := m.Get(ctx, "a")
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Equal(t, []string{"closed>open", "open>half-open", "half-open>open"}, changes)
	})
}

// Too many entries (keys and prefixes together) missed their L2 write or
// deletion to name them all: no key is read from L2 until the whole
// namespace under the store's Prefix is deleted.
func TestMultiLevelUnrepairedOverflow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		m := newLevels(t, db, client, MultiLevelOptions{BreakAfter: 1, BreakFor: 50 * time.Millisecond})
		ctx := t.Context()
		require.NoError(t, m.Set(ctx, "old", 1, time.Minute))
		p.Cut()
		for i := range missedLimit + 1 {
			if i < missedLimit/2 { // first, while L1 is small: a deletion by prefix scans it
				_, _ = m.DeletePrefix(ctx, fmt.Sprint("p", i, ":"))
			} else {
				_ = m.Set(ctx, fmt.Sprint("k", i), i, time.Minute)
			}
		}
		assert.Equal(t, missedLimit, m.Stats().L2Unrepaired)
		p.Restore()
		m.l1.Delete("old")
		_, _, ok, _ := m.Get(ctx, "old")
		assert.False(t, ok, "L2 is not read while the record overflowed")
		require.Eventually(t, func() bool {
			_ = m.Set(ctx, "new", 2, time.Minute)
			return m.Stats().L2Unrepaired == 0
		}, 2*time.Second, 10*time.Millisecond)
		assert.Zero(t, db.Client.Exists(ctx, db.Key("old")).Val(), "the namespace was cleared")
		m.l1.Delete("new")
		v, _, ok, _ := m.Get(ctx, "new")
		assert.True(t, ok && v == 2, "L2 serves again")
	})
}

// On a Cluster one master can fail alone. Keys on the other masters are
// still served from L2; a write to a key on the failed master updates L1
// and returns the error, and the old value it left in L2 is never served
// once the master is back, which deletes it.
func TestMultiLevelOneMasterDown(t *testing.T) {
	db := redistest.NewCluster(t)
	ps, client := proxiedClient(t, db)
	cc := client.(*redis.ClusterClient)
	m := newLevels(t, db, client, MultiLevelOptions{BreakAfter: -1})
	ctx := t.Context()
	keys := make([]string, 30)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
		require.NoError(t, m.Set(ctx, keys[i], i, time.Minute))
	}
	master := func(k string) string {
		c, err := cc.MasterForKey(ctx, m.l2.Key(k))
		require.NoError(t, err)
		return c.Options().Addr
	}
	down := master("k0")
	ps.CutOne(t, down)

	require.Error(t, m.Set(ctx, "k0", 100, time.Minute), "k0's master is down")
	v, ok := m.l1.Get("k0")
	require.True(t, ok && v == 100, "L1 has the write")
	m.l1.DeleteFunc(func(string, int) bool { return true })
	var onDown, served int
	for i, k := range keys {
		v, _, ok, _ := m.Get(ctx, k)
		if master(k) == down {
			onDown++
			assert.False(t, ok, "%s lives on the failed master", k)
			continue
		}
		assert.True(t, ok && v == i, "%s served from L2 by a healthy master", k)
		served++
	}
	require.Greater(t, onDown, 1)
	require.Positive(t, served)

	ps.Restore()
	m.l1.Delete("k0")
	v, _, ok, _ = m.Get(ctx, "k0")
	assert.False(t, ok && v == 0, "the value the failed write replaced is not served")
	require.Eventually(t, func() bool {
		_, _, _, _ = m.Get(ctx, "k1") // a call that reaches Redis repairs it first
		m.l1.Delete("k1")
		return db.Client.Exists(ctx, db.Key("k0")).Val() == 0
	}, 2*time.Second, 10*time.Millisecond, "the stale entry was deleted from Redis")
	assert.Zero(t, m.Stats().L2Unrepaired)
}

// A repair that fails pauses repairs for BreakFor, so a Redis that is down
// is not sent the whole record on every call; a repair that succeeds does
// not pause the next one.
func TestMultiLevelRepairPausesOnlyAfterAFailure(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		outage := func(p *proxies, m *MultiLevel[int], key string) {
			t.Helper()
			p.Cut()
			require.Error(t, m.Set(ctx, key, 2, time.Minute))
			require.Equal(t, 1, m.Stats().L2Unrepaired, "%s missed its write", key)
		}

		// No breaker, so every call reaches Redis; BreakFor is only the pause.
		p, client := proxiedClient(t, db)
		ok := newLevels(t, db, client, MultiLevelOptions{BreakAfter: -1, BreakFor: time.Hour})
		for _, key := range []string{"a", "b"} {
			outage(p, ok, key)
			p.Restore()
			_, _, _, err := ok.Get(ctx, "other")
			require.NoError(t, err)
			assert.Zero(t, ok.Stats().L2Unrepaired, "after %s's outage: the first call that reaches Redis repairs it", key)
		}

		p2, client2 := proxiedClient(t, db)
		failed := newLevels(t, db, client2, MultiLevelOptions{BreakAfter: -1, BreakFor: time.Hour})
		require.NoError(t, failed.Set(ctx, "k", 1, time.Minute))
		outage(p2, failed, "k")
		failed.l1.Delete("other")
		_, _, _, _ = failed.Get(ctx, "other") // its repair fails: Redis is still down
		p2.Restore()
		for range 3 {
			failed.l1.Delete("other")
			_, _, _, err := failed.Get(ctx, "other")
			require.NoError(t, err)
		}
		assert.Equal(t, 1, failed.Stats().L2Unrepaired, "no repair within BreakFor of a failed one")
		assert.Equal(t, int64(1), db.Client.Exists(ctx, db.Key("k")).Val(), "the stale k is still in Redis")
		failed.l1.Delete("k")
		_, _, found, err := failed.Get(ctx, "k")
		require.NoError(t, err)
		assert.False(t, found, "the stale k is not served meanwhile")
	})
}

// A deletion that failed in L2 is recorded like a failed write: the value
// it should have removed is not served, and is deleted from Redis once it
// answers again. One that succeeded leaves nothing to repair.
func TestMultiLevelFailedDeleteIsRepaired(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		m := newLevels(t, db, client, MultiLevelOptions{BreakAfter: -1})
		ctx := t.Context()
		for _, k := range []string{"gone", "d", "grp:1"} {
			require.NoError(t, m.Set(ctx, k, 1, time.Minute))
		}
		require.NoError(t, m.Delete(ctx, "gone"))
		assert.Zero(t, m.Stats().L2Unrepaired, "a deletion that reached Redis")

		p.Cut()
		require.Error(t, m.Delete(ctx, "d"))
		_, err := m.DeletePrefix(ctx, "grp:")
		require.Error(t, err)
		assert.Equal(t, 2, m.Stats().L2Unrepaired, "a key and a prefix")
		p.Restore()
		for _, k := range []string{"d", "grp:1"} {
			_, _, found, err := m.Get(ctx, k)
			require.NoError(t, err)
			assert.False(t, found, "%s, which a failed deletion left in Redis, is not served", k)
		}
		require.Eventually(t, func() bool {
			_, _, _, _ = m.Get(ctx, "other")
			return m.Stats().L2Unrepaired == 0
		}, 2*time.Second, 10*time.Millisecond)
		assert.Zero(t, db.Client.Exists(ctx, db.Key("d"), db.Key("grp:1")).Val(), "deleted from Redis by the repair")
	})
}
