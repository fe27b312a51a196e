package cache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 100 concurrent misses on one key: one load, every caller gets its value.
func TestAsideStampedeProtection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.set("hot", 42)
		db.delay = 50 * time.Millisecond
		a, err := NewAside(newMem(t, 100).AsStore(), AsideOptions{TTL: time.Minute})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				v, err := a.Get(t.Context(), "hot", db.Load)
				assert.NoError(t, err)
				assert.Equal(t, 42, v)
			})
		}
		wg.Wait()
		loads, _, _ := db.counts()
		assert.Equal(t, 1, loads)
		st := a.Stats()
		assert.Equal(t, uint64(1), st.Loads)
		assert.Equal(t, uint64(99), st.Shared)
		// Now a hit.
		_, err = a.Get(t.Context(), "hot", db.Load)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), a.Stats().Hits)
	})
}

// missThenHook is a store whose first Get misses and, before it returns,
// runs hook: a load that ends between a caller's miss and its flight.
type missThenHook struct {
	Store[string, int]
	hook func()
	once sync.Once
}

func (s *missThenHook) Get(ctx context.Context, key string) (int, time.Duration, bool, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		s.hook()
		return 0, 0, false, nil
	}
	return s.Store.Get(ctx, key)
}

// A miss whose load another caller finishes before the miss reaches the
// flight finds the value on its second look instead of loading again.
func TestAsideMissRacingAnEndingLoadDoesNotLoadAgain(t *testing.T) {
	db := newFakeDB()
	db.set("hot", 42)
	st := &missThenHook{Store: newMem(t, 100).AsStore()}
	a, err := NewAside[string, int](st, AsideOptions{TTL: time.Minute})
	require.NoError(t, err)
	st.hook = func() {
		v, err := a.Get(t.Context(), "hot", db.Load)
		assert.NoError(t, err)
		assert.Equal(t, 42, v)
	}
	v, err := a.Get(t.Context(), "hot", db.Load)
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	loads, _, _ := db.counts()
	assert.Equal(t, 1, loads, "the source is read once")
	assert.Equal(t, uint64(1), a.Stats().Loads)
}

// Without protection every concurrent miss loads (the lab's baseline).
func TestAsideAllowStampede(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.set("hot", 1)
		db.delay = 10 * time.Millisecond
		a, err := NewAside(newMem(t, 100).AsStore(), AsideOptions{AllowStampede: true})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { _, _ = a.Get(t.Context(), "hot", db.Load) })
		}
		wg.Wait()
		loads, _, _ := db.counts()
		assert.Equal(t, 20, loads)
	})
}

// A waiter whose context ends stops waiting; the load goes on for others.
func TestAsideWaiterHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.set("k", 1)
		db.delay = time.Second
		a, err := NewAside(newMem(t, 10).AsStore(), AsideOptions{})
		require.NoError(t, err)
		done := make(chan error)
		go func() { _, err := a.Get(t.Context(), "k", db.Load); done <- err }()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		_, err = a.Get(ctx, "k", db.Load)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, <-done)
	})
}

func TestAsideNegativeCaching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		a, err := NewAside(newMem(t, 10).AsStore(), AsideOptions{NegativeTTL: time.Second})
		require.NoError(t, err)
		for range 5 {
			_, err := a.Get(t.Context(), "missing", db.Load)
			require.ErrorIs(t, err, ErrNotFound)
		}
		loads, _, _ := db.counts()
		assert.Equal(t, 1, loads, "not-found remembered")
		assert.Equal(t, uint64(4), a.Stats().NegativeHits)
		db.set("missing", 7)
		time.Sleep(time.Second)
		v, err := a.Get(t.Context(), "missing", db.Load)
		require.NoError(t, err)
		assert.Equal(t, 7, v, "negative entry expired")
		// Forget drops a remembered not-found at once.
		_, _ = a.Get(t.Context(), "other", db.Load)
		db.set("other", 8)
		a.Forget("other")
		v, err = a.Get(t.Context(), "other", db.Load)
		require.NoError(t, err)
		assert.Equal(t, 8, v)
	})
}

// Without NegativeTTL a not-found is not remembered: every Get asks the
// source again.
func TestAsideNoNegativeCachingByDefault(t *testing.T) {
	db := newFakeDB()
	a, err := NewAside(newMem(t, 10).AsStore(), AsideOptions{TTL: time.Minute})
	require.NoError(t, err)
	for range 3 {
		_, err := a.Get(t.Context(), "missing", db.Load)
		require.ErrorIs(t, err, ErrNotFound)
	}
	loads, _, _ := db.counts()
	assert.Equal(t, 3, loads)
	assert.Zero(t, a.Stats().NegativeHits)
	assert.Zero(t, a.Stats().HitRatio(), "no hits")
	db.set("k", 1)
	for range 2 { // a miss, then a hit
		_, err := a.Get(t.Context(), "k", db.Load)
		require.NoError(t, err)
	}
	st := a.Stats()
	assert.Equal(t, uint64(1), st.Hits)
	assert.Equal(t, uint64(4), st.Misses)
	assert.InDelta(t, 0.2, st.HitRatio(), 1e-9)
	assert.Zero(t, AsideStats{}.HitRatio(), "no lookups")
	assert.InDelta(t, 0.5, AsideStats{Hits: 3, Misses: 3}.HitRatio(), 1e-9)
}

// brokenStore fails every lookup and save, as a cache that is down does.
type brokenStore struct{ Store[string, int] }

var errStore = errors.New("cache store down")

func (brokenStore) Get(context.Context, string) (int, time.Duration, bool, error) {
	return 0, 0, false, errStore
}
func (brokenStore) Set(context.Context, string, int, time.Duration) error { return errStore }

// A failing cache store is reported (StoreErrors, OnError) and bypassed:
// Get still answers from the source. A healthy store reports nothing.
func TestAsideStoreErrors(t *testing.T) {
	db := newFakeDB()
	db.set("k", 5)
	var seen []error
	a, err := NewAside(brokenStore{newMem(t, 10).AsStore()}, AsideOptions{OnError: func(err error) { seen = append(seen, err) }})
	require.NoError(t, err)
	v, err := a.Get(t.Context(), "k", db.Load)
	require.NoError(t, err)
	assert.Equal(t, 5, v)
	assert.Equal(t, []error{errStore, errStore}, seen, "the failed lookup, then the failed save")
	assert.Equal(t, uint64(2), a.Stats().StoreErrors)

	seen = nil
	ok, err := NewAside(newMem(t, 10).AsStore(), AsideOptions{OnError: func(err error) { seen = append(seen, err) }})
	require.NoError(t, err)
	for range 2 { // a load, then a hit
		v, err := ok.Get(t.Context(), "k", db.Load)
		require.NoError(t, err)
		assert.Equal(t, 5, v)
	}
	assert.Empty(t, seen)
	assert.Zero(t, ok.Stats().StoreErrors)
	// Without OnError, errors are still counted.
	quiet, err := NewAside(brokenStore{newMem(t, 10).AsStore()}, AsideOptions{})
	require.NoError(t, err)
	_, err = quiet.Get(t.Context(), "k", db.Load)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), quiet.Stats().StoreErrors)
}

// Other load errors are returned and not cached.
func TestAsideLoadErrorNotCached(t *testing.T) {
	db := newFakeDB()
	db.set("k", 3)
	a, err := NewAside(newMem(t, 10).AsStore(), AsideOptions{NegativeTTL: time.Minute})
	require.NoError(t, err)
	db.setFail(errSource)
	_, err = a.Get(t.Context(), "k", db.Load)
	require.ErrorIs(t, err, errSource)
	db.setFail(nil)
	v, err := a.Get(t.Context(), "k", db.Load)
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Equal(t, uint64(1), a.Stats().LoadErrors)
}

// Jitter spreads the TTLs of keys loaded together within [TTL·(1−j), TTL].
func TestAsideJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMem(t, 1000)
		a, err := NewAside(m.AsStore(), AsideOptions{TTL: 100 * time.Second, Jitter: 0.2})
		require.NoError(t, err)
		db := newFakeDB()
		seen := map[time.Duration]bool{}
		for i := range 100 {
			k := string(rune('a'+i%26)) + string(rune('a'+i/26))
			db.set(k, i)
			_, err := a.Get(t.Context(), k, db.Load)
			require.NoError(t, err)
			_, ttl, ok, _ := m.AsStore().Get(t.Context(), k)
			require.True(t, ok)
			assert.GreaterOrEqual(t, ttl, 80*time.Second)
			assert.LessOrEqual(t, ttl, 100*time.Second)
			seen[ttl/time.Second] = true
		}
		assert.Greater(t, len(seen), 10, "TTLs are spread")
	})
}

func TestReadThrough(t *testing.T) {
	db := newFakeDB()
	db.set("a", 1)
	r, err := NewReadThrough[string, int](newMem(t, 10).AsStore(), db, AsideOptions{})
	require.NoError(t, err)
	for range 3 {
		v, err := r.Get(t.Context(), "a")
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	}
	loads, _, _ := db.counts()
	assert.Equal(t, 1, loads)
}

func TestPatternsBadInput(t *testing.T) {
	m := newMem(t, 10)
	db := newFakeDB()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"aside nil store", func() error { _, err := NewAside[string, int](nil, AsideOptions{}); return err }()},
		{"aside negative ttl", func() error { _, err := NewAside(m.AsStore(), AsideOptions{TTL: -1}); return err }()},
		{"aside jitter 1", func() error { _, err := NewAside(m.AsStore(), AsideOptions{Jitter: 1}); return err }()},
		{"aside negative capacity", func() error { _, err := NewAside(m.AsStore(), AsideOptions{NegativeCapacity: -1}); return err }()},
		{"read-through nil loader", func() error { _, err := NewReadThrough(m.AsStore(), nil, AsideOptions{}); return err }()},
		{"write-through nil source", func() error { _, err := NewWriteThrough(m.AsStore(), nil, 0); return err }()},
		{"write-through negative ttl", func() error { _, err := NewWriteThrough[string, int](m.AsStore(), db, -time.Second); return err }()},
		{"write-behind nil writer", func() error { _, err := NewWriteBehind(m.AsStore(), nil, WriteBehindOptions{}); return err }()},
		{"write-behind negative batch", func() error {
			_, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{BatchSize: -1})
			return err
		}()},
		{"write-behind backoff order", func() error {
			_, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{MinBackoff: time.Second, MaxBackoff: time.Millisecond})
			return err
		}()},
		{"write-behind unknown policy", func() error {
			_, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{Full: 7})
			return err
		}()},
		{"refresh-ahead zero ttl", func() error {
			_, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{})
			return err
		}()},
		{"refresh-ahead nil loader", func() error {
			_, err := NewRefreshAhead(m.AsStore(), nil, RefreshAheadOptions{TTL: time.Second})
			return err
		}()},
		{"refresh-ahead fraction", func() error {
			_, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{TTL: time.Second, RefreshAfter: 1.5})
			return err
		}()},
		{"refresh-ahead beta", func() error {
			_, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{TTL: time.Second, Beta: -1})
			return err
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.err, ErrInvalidConfig)
			assert.Contains(t, tc.err.Error(), "cache: ")
		})
	}
	// One fixed backoff is a valid choice.
	w, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{MinBackoff: time.Second, MaxBackoff: time.Second})
	require.NoError(t, err)
	require.NoError(t, w.Close(t.Context()))
	a, err := NewAside(m.AsStore(), AsideOptions{})
	require.NoError(t, err)
	_, err = a.Get(t.Context(), "k", nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "nil loader")
}
