package cache

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type evictLog struct {
	mu  sync.Mutex
	got []string
}

func (l *evictLog) add(k string, v int, r Reason) {
	l.mu.Lock()
	l.got = append(l.got, fmt.Sprintf("%s=%d:%v", k, v, r))
	l.mu.Unlock()
}

func (l *evictLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// Every policy honours the same contract: bounded size, expiry, deletes,
// replacement and the eviction callback with its reason.
func TestMemoryContractEveryPolicy(t *testing.T) {
	for _, p := range Policies {
		t.Run("policy="+p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log evictLog
				m, err := NewMemory(10, MemoryOptions[string, int]{Policy: p, Shards: 1, OnEvict: log.add})
				require.NoError(t, err)
				for i := range 10 {
					require.NoError(t, m.Set(fmt.Sprint("k", i), i))
				}
				for i := range 10 {
					v, ok := m.Get(fmt.Sprint("k", i))
					require.True(t, ok, "k%d present", i)
					assert.Equal(t, i, v)
				}
				require.NoError(t, m.Set("k0", 100))
				v, ok := m.Get("k0")
				assert.True(t, ok)
				assert.Equal(t, 100, v)
				assert.Contains(t, log.list(), "k0=0:replaced")

				// Over capacity: exactly one entry goes, reported as evicted.
				require.NoError(t, m.Set("new", 1))
				assert.Equal(t, 10, m.Len())
				evicted := 0
				for _, s := range log.list() {
					if len(s) > 8 && s[len(s)-8:] == ":evicted" {
						evicted++
					}
				}
				assert.Equal(t, 1, evicted, "%v", log.list())

				assert.True(t, m.Delete("k5") || !has(m, "k5"))
				_, ok = m.Get("k5")
				assert.False(t, ok)

				// Per-entry TTL: never returned after expiry.
				require.NoError(t, m.SetWithTTL("short", 7, time.Second))
				time.Sleep(999 * time.Millisecond)
				v, ok = m.Get("short")
				assert.True(t, ok)
				assert.Equal(t, 7, v)
				time.Sleep(time.Millisecond)
				_, ok = m.Get("short")
				assert.False(t, ok, "expired entry returned")
				assert.Contains(t, log.list(), "short=7:expired")

				st := m.Stats()
				assert.Positive(t, st.Hits)
				assert.Positive(t, st.Misses)
				assert.Equal(t, uint64(1), st.Replaced)
				assert.Positive(t, st.Expired)
				assert.Equal(t, m.Len(), st.Entries)
				assert.InDelta(t, float64(st.Hits)/float64(st.Hits+st.Misses), st.HitRatio(), 1e-9)
			})
		})
	}
}

func has(m *Memory[string, int], k string) bool { _, ok := m.Get(k); return ok }

func TestMemoryDefaultTTLAndCleanup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := NewMemory(100, MemoryOptions[string, int]{DefaultTTL: time.Minute})
		require.NoError(t, err)
		require.NoError(t, m.Set("a", 1))
		require.NoError(t, m.SetWithTTL("b", 2, time.Hour))
		_, ttl, ok, err := m.Lookup(t.Context(), "a")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, time.Minute, ttl)
		time.Sleep(time.Minute)
		assert.Equal(t, 1, m.Cleanup())
		assert.Equal(t, 1, m.Len())
		_, ok = m.Get("b")
		assert.True(t, ok)
	})
}

func TestMemoryLRUOrder(t *testing.T) {
	m, err := NewMemory(3, MemoryOptions[int, int]{Policy: LRU, Shards: 1})
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, m.Set(i, i))
	}
	m.Get(0) // 1 is now least recent
	require.NoError(t, m.Set(3, 3))
	_, ok := m.Get(1)
	assert.False(t, ok, "least recently used key evicted")
	for _, k := range []int{0, 2, 3} {
		_, ok := m.Get(k)
		assert.True(t, ok, "key %d kept", k)
	}
}

func TestMemoryLFUKeepsFrequentAndAges(t *testing.T) {
	m, err := NewMemory(3, MemoryOptions[int, int]{Policy: LFU, Shards: 1})
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, m.Set(i, i))
	}
	for range 5 {
		m.Get(0)
		m.Get(1)
	}
	require.NoError(t, m.Set(3, 3)) // evicts 2 (one hit)
	_, ok := m.Get(2)
	assert.False(t, ok)
	// Aging: new keys that keep getting hit eventually displace 0 and 1,
	// which are never read again.
	for k := 10; k < 40; k++ {
		require.NoError(t, m.Set(k, k))
		for range 3 {
			m.Get(k)
		}
	}
	_, ok0 := m.Get(0)
	_, ok1 := m.Get(1)
	assert.False(t, ok0 && ok1, "old popularity decays")
}

func TestMemoryTTLOnlyEvictsSoonestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := NewMemory(3, MemoryOptions[string, int]{Policy: TTLOnly, Shards: 1})
		require.NoError(t, err)
		require.NoError(t, m.SetWithTTL("long", 1, time.Hour))
		require.NoError(t, m.SetWithTTL("short", 2, time.Minute))
		require.NoError(t, m.Set("forever", 3))
		require.NoError(t, m.Set("forever2", 4))
		assert.False(t, has(m, "short"))
		require.NoError(t, m.Set("forever3", 5))
		assert.False(t, has(m, "long"))
		require.NoError(t, m.Set("forever4", 6))
		assert.False(t, has(m, "forever"), "FIFO among entries without TTL")
		assert.True(t, has(m, "forever2"))
	})
}

// A scan of once-read keys does not flush TinyLFU's hot set; it flushes
// LRU's.
func TestMemoryTinyLFUResistsScan(t *testing.T) {
	hotKept := func(p Policy) int {
		m, err := NewMemory(100, MemoryOptions[int, int]{Policy: p, Shards: 1})
		require.NoError(t, err)
		for range 20 {
			for k := range 50 {
				if !has2(m, k) {
					require.NoError(t, m.Set(k, k))
				}
			}
		}
		for k := 1000; k < 2000; k++ {
			if !has2(m, k) {
				require.NoError(t, m.Set(k, k))
			}
		}
		n := 0
		for k := range 50 {
			if has2(m, k) {
				n++
			}
		}
		return n
	}
	assert.GreaterOrEqual(t, hotKept(TinyLFU), 45)
	assert.Equal(t, 0, hotKept(LRU))
}

func has2(m *Memory[int, int], k int) bool { _, ok := m.Get(k); return ok }

func TestMemoryWeigher(t *testing.T) {
	m, err := NewMemory(100, MemoryOptions[string, []byte]{
		Shards: 1, Weigher: func(_ string, v []byte) int64 { return int64(len(v)) },
	})
	require.NoError(t, err)
	require.NoError(t, m.Set("a", make([]byte, 60)))
	require.NoError(t, m.Set("b", make([]byte, 60)))
	assert.LessOrEqual(t, m.Stats().Weight, int64(100))
	assert.Equal(t, 1, m.Len())
	err = m.Set("huge", make([]byte, 101))
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "huge")
	assert.Contains(t, err.Error(), "101")
	_, err = NewMemory(10, MemoryOptions[string, int]{Weigher: func(string, int) int64 { return -1 }})
	require.NoError(t, err)
}

func TestMemoryBadInput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		opts     MemoryOptions[string, int]
		msg      string
	}{
		{"zero capacity", 0, MemoryOptions[string, int]{}, "got 0"},
		{"negative capacity", -5, MemoryOptions[string, int]{}, "got -5"},
		{"negative ttl", 10, MemoryOptions[string, int]{DefaultTTL: -time.Second}, "-1s"},
		{"shards not power of two", 10, MemoryOptions[string, int]{Shards: 3}, "got 3"},
		{"shards above capacity", 2, MemoryOptions[string, int]{Shards: 4}, "shards (4)"},
		{"unknown policy", 10, MemoryOptions[string, int]{Policy: 9}, "policy 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMemory(tc.capacity, tc.opts)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), "cache: ")
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	m, err := NewMemory(10, MemoryOptions[string, int]{Weigher: func(string, int) int64 { return -1 }})
	require.NoError(t, err)
	err = m.Set("k", 1)
	require.ErrorIs(t, err, ErrInvalidConfig)
	err = m.SetWithTTL("k", 1, -time.Second)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "-1s")
	assert.False(t, errors.Is(err, ErrTooLarge))
}

// The callback may call back into the store: it never runs under a lock.
func TestMemoryCallbackMayReenter(t *testing.T) {
	var m *Memory[int, int]
	var reentered int
	m, err := NewMemory(2, MemoryOptions[int, int]{Shards: 1, OnEvict: func(k, v int, r Reason) {
		if r == Evicted && k >= 0 {
			reentered += m.Len()
			_ = m.Set(-k-100, v) // evicts again, recursively bounded by capacity
		}
	}})
	require.NoError(t, err)
	for i := range 5 {
		require.NoError(t, m.Set(i, i))
	}
	assert.Positive(t, reentered)
	assert.Equal(t, 2, m.Len())
}

func TestMemoryDeleteFunc(t *testing.T) {
	m, err := NewMemory(100, MemoryOptions[string, int]{})
	require.NoError(t, err)
	for _, k := range []string{"user:1", "user:2", "order:1"} {
		require.NoError(t, m.Set(k, 1))
	}
	n := m.DeleteFunc(func(k string, _ int) bool { return len(k) > 5 && k[:5] == "user:" })
	assert.Equal(t, 2, n)
	assert.True(t, has(m, "order:1"))
	assert.Equal(t, uint64(2), m.Stats().Deleted)
}

func TestMemoryConcurrent(t *testing.T) {
	for _, p := range Policies {
		t.Run("policy="+p.String(), func(t *testing.T) {
			m, err := NewMemory(256, MemoryOptions[int, int]{Policy: p, Shards: 4, DefaultTTL: time.Hour})
			require.NoError(t, err)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 3000 {
						k := (i * (g + 1)) % 512
						if v, ok := m.Get(k); ok && v != k {
							t.Errorf("key %d has value %d", k, v)
						}
						if i%4 == 0 {
							_ = m.Set(k, k)
						}
						if i%97 == 0 {
							m.Delete(k)
						}
					}
				})
			}
			wg.Wait()
			assert.LessOrEqual(t, m.Len(), 256)
			st := m.Stats()
			assert.Equal(t, uint64(4*3000), st.Hits+st.Misses)
		})
	}
}
