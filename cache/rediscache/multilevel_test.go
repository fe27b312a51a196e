package rediscache

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func newLevels(t *testing.T, db *redistest.DB, client redis.UniversalClient, opts MultiLevelOptions) *MultiLevel[int] {
	t.Helper()
	l1, err := cache.NewMemory(1000, cache.MemoryOptions[string, int]{})
	require.NoError(t, err)
	l2, err := New[int](client, Options{Prefix: db.Prefix, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	m, err := NewMultiLevel(t.Context(), l1, l2, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return m
}

func TestMultiLevelFillsL1WithRemainingTTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		m := newLevels(t, db, db.Client, MultiLevelOptions{})
		require.NoError(t, db.Client.Set(ctx, db.Key("k"), "7", 30*time.Second).Err())
		v, _, ok, _ := m.Get(ctx, "k")
		require.True(t, ok)
		assert.Equal(t, 7, v)
		_, ttl, ok, _ := m.l1.AsStore().Get(ctx, "k")
		require.True(t, ok, "L1 filled")
		assert.InDelta(t, float64(30*time.Second), float64(ttl), float64(time.Second))
		v, _, ok, _ = m.Get(ctx, "k")
		require.True(t, ok)
		assert.Equal(t, 7, v)
		st := m.Stats()
		assert.Equal(t, uint64(1), st.L2Hits)
		assert.Equal(t, uint64(1), st.L1Hits)

		// Writes and deletes go through both levels.
		require.NoError(t, m.Set(ctx, "w", 1, time.Minute))
		raw, err := db.Client.Get(ctx, db.Key("w")).Result()
		require.NoError(t, err)
		assert.Equal(t, "1", raw)
		require.NoError(t, m.Delete(ctx, "w"))
		_, ok = m.l1.Get("w")
		assert.False(t, ok)
		assert.Zero(t, db.Client.Exists(ctx, db.Key("w")).Val())
	})
}

// L1TTL caps how long L1 keeps a value, whatever the TTL asked for; a
// TTL of 0 is L2's DefaultTTL; the options' bounds are inclusive.
func TestMultiLevelTTLsAndOptionBounds(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		l1, err := cache.NewMemory(10, cache.MemoryOptions[string, int]{})
		require.NoError(t, err)
		l2, err := New[int](db.Client, Options{Prefix: db.Prefix, DefaultTTL: time.Hour})
		require.NoError(t, err)
		m, err := NewMultiLevel(ctx, l1, l2, MultiLevelOptions{L1TTL: 10 * time.Second})
		require.NoError(t, err)
		l1TTL := func(key string) time.Duration {
			t.Helper()
			_, ttl, ok, err := l1.AsStore().Get(ctx, key)
			require.NoError(t, err)
			require.True(t, ok, "%s is in L1", key)
			return ttl
		}
		l2TTL := func(key string) time.Duration {
			t.Helper()
			ttl, err := db.Client.PTTL(ctx, db.Key(key)).Result()
			require.NoError(t, err)
			return ttl
		}
		const slack = float64(time.Second)
		require.NoError(t, m.Set(ctx, "long", 1, time.Minute))
		assert.InDelta(t, float64(10*time.Second), float64(l1TTL("long")), slack, "capped at L1TTL")
		assert.InDelta(t, float64(time.Minute), float64(l2TTL("long")), slack)
		require.NoError(t, m.Set(ctx, "short", 1, 3*time.Second))
		assert.InDelta(t, float64(3*time.Second), float64(l1TTL("short")), slack, "shorter than L1TTL: kept")
		assert.InDelta(t, float64(3*time.Second), float64(l2TTL("short")), slack)
		require.NoError(t, m.Set(ctx, "default", 1, 0))
		assert.InDelta(t, float64(10*time.Second), float64(l1TTL("default")), slack)
		assert.InDelta(t, float64(time.Hour), float64(l2TTL("default")), slack, "0 is L2's DefaultTTL")
		require.ErrorIs(t, m.Set(ctx, "negative", 1, -time.Nanosecond), cache.ErrInvalidConfig)
		_, ok := l1.Get("negative")
		assert.False(t, ok, "a rejected write does not reach L1")

		_, err = NewMultiLevel(ctx, l1, l2, MultiLevelOptions{BreakAfter: math.MaxUint32})
		require.NoError(t, err, "BreakAfter's bound is inclusive")
		for name, opts := range map[string]MultiLevelOptions{
			"BreakAfter":  {BreakAfter: math.MaxUint32 + 1},
			"L1TTL":       {L1TTL: -time.Nanosecond},
			"HealthCheck": {HealthCheck: -time.Nanosecond},
			"BreakFor":    {BreakFor: -time.Nanosecond},
		} {
			_, err = NewMultiLevel(ctx, l1, l2, opts)
			require.ErrorIs(t, err, cache.ErrInvalidConfig, name)
		}
		_, err = NewMultiLevel[int](ctx, nil, l2, MultiLevelOptions{})
		require.ErrorIs(t, err, cache.ErrInvalidConfig, "no L1")
		assert.ErrorContains(t, err, "(L1 false, L2 true)")
		_, err = NewMultiLevel(ctx, l1, nil, MultiLevelOptions{})
		require.ErrorIs(t, err, cache.ErrInvalidConfig, "no L2")
		assert.ErrorContains(t, err, "(L1 true, L2 false)")
	})
}

// Two processes share one Redis: a write or delete in one evicts the key
// from the other's L1 within milliseconds.
func TestMultiLevelPubSubInvalidation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		channel := db.Key("invalidate")
		invalidated := make(chan string, 10)
		a := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel})
		b := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel,
			OnInvalidate: func(k string, _ bool) { invalidated <- k }})

		require.NoError(t, a.Set(ctx, "user:1", 1, time.Minute))
		<-invalidated // b drops user:1 (not cached yet)
		v, _, ok, _ := b.Get(ctx, "user:1")
		require.True(t, ok)
		assert.Equal(t, 1, v)
		_, ok = b.l1.Get("user:1")
		require.True(t, ok, "b has it in L1")

		start := time.Now()
		require.NoError(t, a.Set(ctx, "user:1", 2, time.Minute))
		select {
		case k := <-invalidated:
			assert.Equal(t, "user:1", k)
		case <-time.After(2 * time.Second):
			t.Fatal("no invalidation within 2s")
		}
		// The message just received may be a late copy of the first
		// invalidation; wait for the one this write sent.
		require.Eventually(t, func() bool { _, ok := b.l1.Get("user:1"); return !ok }, 2*time.Second, time.Millisecond,
			"b's L1 no longer has the old value")
		t.Logf("invalidation reached the other process in %v", time.Since(start))
		v, _, _, _ = b.Get(ctx, "user:1")
		assert.Equal(t, 2, v)

		require.NoError(t, b.Set(ctx, "user:2", 5, time.Minute))
		_, _, _, _ = a.Get(ctx, "user:2")
		_, err := b.DeletePrefix(ctx, "user:")
		require.NoError(t, err)
		// The prefix invalidation walks a's L1 shard by shard: wait for both keys.
		require.Eventually(t, func() bool {
			_, ok1 := a.l1.Get("user:1")
			_, ok2 := a.l1.Get("user:2")
			return !ok1 && !ok2
		}, 2*time.Second, time.Millisecond)
		_, _, ok, _ = a.Get(ctx, "user:1")
		assert.False(t, ok, "gone from L2 too")
		assert.Positive(t, a.Stats().Invalidations)
	})
}

// Redis goes away mid-test: the multi-level cache keeps serving from L1
// and the source, reports the errors, and uses Redis again once it is back.
func TestMultiLevelDegradesAndRecovers(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		var errs atomic.Int32
		m := newLevels(t, db, client, MultiLevelOptions{Channel: db.Key("inv"), HealthCheck: 50 * time.Millisecond,
			OnError: func(error) { errs.Add(1) }})
		rows := map[string]int{"cached": 1, "new": 2} // the source of truth
		load := func(_ context.Context, k string) (int, error) { return rows[k], nil }
		a, err := cache.NewAside[string, int](m, cache.AsideOptions{TTL: time.Minute})
		require.NoError(t, err)
		ctx := t.Context()
		v, err := a.Get(ctx, "cached", load)
		require.NoError(t, err)
		assert.Equal(t, 1, v)

		for _, mode := range []struct {
			name   string
			break_ func()
		}{{"blackhole", p.Blackhole}, {"cut", p.Cut}} {
			t.Run(mode.name, func(t *testing.T) {
				before := m.Stats().L2Errors
				mode.break_()
				start := time.Now()
				v, err := a.Get(ctx, "cached", load)
				require.NoError(t, err)
				assert.Equal(t, 1, v, "served from L1")
				m.l1.Delete("new")
				v, err = a.Get(ctx, "new", load)
				require.NoError(t, err, "served from the source")
				assert.Equal(t, 2, v)
				assert.Less(t, time.Since(start), 2*time.Second, "bounded by the Redis timeout")
				assert.Greater(t, m.Stats().L2Errors, before, "errors counted")
				assert.Positive(t, errs.Load(), "errors reported")

				p.Restore()
				require.Eventually(t, func() bool {
					return m.Set(ctx, "probe", 1, time.Minute) == nil
				}, 5*time.Second, 20*time.Millisecond, "writes reach Redis again")
				m.l1.Delete("probe")
				hits := m.Stats().L2Hits
				_, _, ok, _ := m.Get(ctx, "probe")
				assert.True(t, ok)
				assert.Equal(t, hits+1, m.Stats().L2Hits, "L2 serves again")
			})
		}
		// After the outages the subscription was re-established.
		require.Eventually(t, func() bool { return m.Stats().Resyncs > 0 }, 5*time.Second, 20*time.Millisecond)
	})
}

// Two processes share one Redis: deleting a prefix in one removes the
// group from L2, from its own L1 and, through pub/sub, from the other's L1
// — and nothing outside the group.
func TestMultiLevelDeletePrefixAcrossInstances(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		channel := db.Key("invalidate")
		type inv struct {
			key    string
			prefix bool
		}
		seen := make(chan inv, 100)
		a := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel})
		b := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel,
			OnInvalidate: func(k string, prefix bool) { seen <- inv{k, prefix} }})
		group := []string{"user:1:name", "user:1:email"}
		rest := []string{"user:10:name", "user:2:name", "user:1"}
		for i, k := range append(append([]string{}, group...), rest...) {
			require.NoError(t, a.Set(ctx, k, i, time.Minute))
		}
		// b learns of every write before reading, so no late invalidation of a
		// write empties its L1 below.
		for range len(group) + len(rest) {
			select {
			case m := <-seen:
				require.False(t, m.prefix)
			case <-time.After(2 * time.Second):
				t.Fatal("write invalidations did not arrive")
			}
		}
		for _, k := range append(append([]string{}, group...), rest...) {
			_, _, ok, _ := b.Get(ctx, k)
			require.True(t, ok)
			_, ok = b.l1.Get(k)
			require.True(t, ok, "b has %s in L1", k)
		}

		n, err := a.DeletePrefix(ctx, "user:1:")
		require.NoError(t, err)
		assert.Equal(t, len(group), n)
		select {
		case m := <-seen:
			assert.Equal(t, inv{"user:1:", true}, m)
		case <-time.After(2 * time.Second):
			t.Fatal("no prefix invalidation within 2s")
		}
		for _, k := range group {
			_, ok := a.l1.Get(k)
			assert.False(t, ok, "%s in a's L1", k)
			_, ok = b.l1.Get(k)
			assert.False(t, ok, "%s in b's L1", k)
			assert.Zero(t, db.Client.Exists(ctx, db.Key(k)).Val(), "%s in L2", k)
			_, _, ok, _ = b.Get(ctx, k)
			assert.False(t, ok)
		}
		for _, k := range rest {
			_, ok := b.l1.Get(k)
			assert.True(t, ok, "%s dropped from b's L1 though outside the group", k)
			assert.Equal(t, int64(1), db.Client.Exists(ctx, db.Key(k)).Val(), "%s dropped from L2", k)
		}
		assert.Equal(t, uint64(len(group)+len(rest)+1), b.Stats().Invalidations)
		assert.Zero(t, a.Stats().L2Errors+b.Stats().L2Errors)
	})
}

// When Redis fails mid-delete, the local L1 is cleared all the same and
// the error is returned and counted.
func TestMultiLevelDeletePrefixL2Down(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		p, client := proxiedClient(t, db)
		m := newLevels(t, db, client, MultiLevelOptions{})
		ctx := t.Context()
		require.NoError(t, m.Set(ctx, "grp:1", 1, time.Minute))
		require.NoError(t, m.Set(ctx, "keep", 2, time.Minute))
		p.Cut()
		_, err := m.DeletePrefix(ctx, "grp:")
		require.Error(t, err)
		assert.Positive(t, m.Stats().L2Errors)
		_, ok := m.l1.Get("grp:1")
		assert.False(t, ok, "L1 cleared although L2 failed")
		_, ok = m.l1.Get("keep")
		assert.True(t, ok)
		p.Restore()
		assert.Equal(t, int64(1), db.Client.Exists(ctx, db.Key("grp:1")).Val(), "L2 kept the key the failed delete did not reach")
	})
}

// A subscription that goes silent (a blackholed link: no error, no data)
// is pinged, re-subscribed after two HealthCheck intervals without an
// answer, and cleared of everything L1 may have missed once the new
// subscription is confirmed; invalidations reach it again.
func TestMultiLevelResubscribesASilentSubscription(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		channel := db.Key("inv")
		p, client := proxiedClient(t, db)
		var mu sync.Mutex
		var reports []string
		m := newLevels(t, db, client, MultiLevelOptions{Channel: channel, HealthCheck: 20 * time.Millisecond,
			OnError: func(err error) {
				mu.Lock()
				reports = append(reports, err.Error())
				mu.Unlock()
			}})
		writer := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel})

		p.Blackhole()
		want := fmt.Sprintf("rediscache: invalidation subscription on %q silent for 40ms, re-subscribing", channel)
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(reports, want)
		}, 5*time.Second, 5*time.Millisecond, "a silence of 2 × HealthCheck is reported")
		p.Restore()
		require.Eventually(t, func() bool { return m.Stats().Resyncs > 0 }, 5*time.Second, 5*time.Millisecond,
			"the new subscription is confirmed")

		require.NoError(t, m.l1.Set("x", 1))
		require.NoError(t, writer.Set(ctx, "x", 2, time.Minute))
		require.Eventually(t, func() bool {
			_, ok := m.l1.Get("x")
			return !ok
		}, 5*time.Second, 5*time.Millisecond, "invalidations arrive again")
	})
}

// A deletion by the empty prefix (on a store with a Prefix: the whole
// namespace) empties every process's L1.
func TestMultiLevelEmptyPrefixInvalidatesEveryKey(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		channel := db.Key("inv")
		seen := make(chan string, 10)
		a := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel})
		b := newLevels(t, db, db.NewClient(t), MultiLevelOptions{Channel: channel,
			OnInvalidate: func(k string, prefix bool) {
				if prefix {
					seen <- k
				}
			}})
		require.NoError(t, b.l1.Set("x", 1))
		require.NoError(t, b.l1.Set("y", 2))
		_, err := a.DeletePrefix(ctx, "")
		require.NoError(t, err)
		select {
		case k := <-seen:
			assert.Empty(t, k)
		case <-time.After(5 * time.Second):
			t.Fatal("the empty-prefix invalidation did not arrive")
		}
		assert.Zero(t, b.l1.Len(), "b's L1 emptied")
	})
}

// On a slow link (here 30 ms a round trip, far below the store's 200 ms
// timeout) NewMultiLevel waits for the subscription's confirmation; a link
// that never answers fails it, naming the channel.
func TestMultiLevelSubscribesOverASlowLink(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		channel := db.Key("inv")
		p, client := proxiedClient(t, db)
		p.SetLatency(15 * time.Millisecond)
		m := newLevels(t, db, client, MultiLevelOptions{Channel: channel})
		assert.Zero(t, m.Stats().L2Errors)

		p.SetLatency(0)
		p.Blackhole()
		l1, err := cache.NewMemory(10, cache.MemoryOptions[string, int]{})
		require.NoError(t, err)
		l2, err := New[int](client, Options{Prefix: db.Prefix, Timeout: 20 * time.Millisecond})
		require.NoError(t, err)
		_, err = NewMultiLevel(t.Context(), l1, l2, MultiLevelOptions{Channel: channel})
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("subscribing to invalidation channel %q", channel))
	})
}
