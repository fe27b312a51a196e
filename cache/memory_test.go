package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/cache/internal/table"
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
		_, ttl, ok, err := m.AsStore().Get(t.Context(), "a")
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

		// A rewrite re-files the entry by its new expiry.
		m, err = NewMemory(3, MemoryOptions[string, int]{Policy: TTLOnly, Shards: 1})
		require.NoError(t, err)
		require.NoError(t, m.SetWithTTL("a", 1, time.Minute))
		require.NoError(t, m.SetWithTTL("b", 2, time.Hour))
		require.NoError(t, m.Set("c", 3))
		require.NoError(t, m.SetWithTTL("a", 4, 2*time.Hour))
		require.NoError(t, m.Set("c", 5)) // now the newest of the entries without TTL
		require.NoError(t, m.Set("d", 6))
		assert.False(t, has(m, "b"), "b now expires soonest")
		require.NoError(t, m.Set("e", 7))
		assert.False(t, has(m, "a"))
		require.NoError(t, m.Set("f", 8))
		assert.False(t, has(m, "c"), "c rewritten before d was written: older in FIFO order")
		assert.True(t, has(m, "d"))
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
			assert.Equal(t, int64(st.Entries), st.Weight, "the shards' weights count their entries")
			assert.Equal(t, st.Weight, m.weight.Load(), "the store's total is the shards' sum")
		})
	}
}

// Writers inserting new keys into a full store in parallel leave it full
// and within its capacity, and its total weight equal to what the shards
// hold: an insert that evicts as much as it adds skips the total, and one
// that found room a racing insert took evicts after all.
func TestMemoryConcurrentInsertsKeepCapacity(t *testing.T) {
	for _, p := range Policies {
		t.Run("policy="+p.String(), func(t *testing.T) {
			const capN, writers = 64, 4
			m, err := NewMemory(capN, MemoryOptions[int, int]{Policy: p, Shards: 4})
			require.NoError(t, err)
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range 2000 {
						_ = m.Set(g*1_000_000+i, i)
					}
				})
			}
			wg.Wait()
			st := m.Stats()
			assert.Equal(t, st.Weight, m.weight.Load(), "the store's total is the shards' sum")
			assert.Equal(t, int64(st.Entries), st.Weight)
			assert.LessOrEqual(t, st.Entries, capN)
			assert.GreaterOrEqual(t, st.Entries, capN-writers, "at most one extra eviction per racing writer")
			assert.Equal(t, uint64(writers*2000-st.Entries), st.Evicted)
		})
	}
}

// evictionTrace returns a one-shard store of policy p and the keys it
// evicted (by capacity) since the slice was last emptied.
func evictionTrace(t *testing.T, capN int, p Policy) (*Memory[int, int], *[]int) {
	t.Helper()
	evicted := new([]int)
	m, err := NewMemory(capN, MemoryOptions[int, int]{Policy: p, Shards: 1, OnEvict: func(k, _ int, r Reason) {
		if r == Evicted {
			*evicted = append(*evicted, k)
		}
	}})
	require.NoError(t, err)
	return m, evicted
}

// LRU evicts an entry whose last use (insertion, read or rewrite) is in the
// oldest epoch of any resident entry. With capacity ≤ lruBuckets an epoch
// is one insertion, so this is exact LRU up to the order of reads between
// two insertions; checked against a reference model on a random trace.
func TestMemoryLRUEvictsLeastRecentlyUsed(t *testing.T) {
	const capN = 32
	m, trace := evictionTrace(t, capN, LRU)
	r := rand.New(rand.NewPCG(1, 2))
	lastUse := map[int]uint64{} // resident key -> epoch of its last use
	var epoch uint64
	for i := range 20000 {
		k := r.IntN(100)
		if _, ok := m.Get(k); ok {
			lastUse[k] = epoch
			if r.IntN(10) == 0 {
				require.NoError(t, m.Set(k, i)) // a rewrite is a use too
			}
			continue
		}
		epoch++
		lastUse[k] = epoch
		require.NoError(t, m.Set(k, i))
		if len(lastUse) <= capN {
			require.Empty(t, *trace, "op %d: eviction below capacity", i)
			continue
		}
		require.Len(t, *trace, 1, "op %d", i)
		v := (*trace)[0]
		for other, e := range lastUse {
			require.LessOrEqual(t, lastUse[v], e, "op %d: evicted %d (last used in epoch %d) while %d was last used in epoch %d", i, v, lastUse[v], other, e)
		}
		delete(lastUse, v)
		*trace = (*trace)[:0]
	}
	assert.Equal(t, capN, m.Len())
}

// LFU evicts an entry of the lowest priority, hits + L (LFU-DA), although
// reads only count hits in the entries and the policy folds them in late;
// checked against a reference model on a random trace in which no entry is
// read more than lfuHitLimit times per stay (the count an entry keeps
// between two folds saturates there).
func TestMemoryLFUEvictsLowestPriority(t *testing.T) {
	const capN = 32
	m, trace := evictionTrace(t, capN, LFU)
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.2, 1, 99)
	prio := map[int]int64{} // resident key -> hits + L at insertion
	hits := map[int]int{}   // resident key -> hits since insertion
	var age int64
	for i := range 5000 {
		k := int(z.Uint64())
		if hits[k] == lfuHitLimit {
			continue
		}
		if _, ok := m.Get(k); ok {
			prio[k]++
			hits[k]++
			continue
		}
		prio[k], hits[k] = age+1, 0
		require.NoError(t, m.Set(k, i))
		if len(prio) <= capN {
			require.Empty(t, *trace, "op %d: eviction below capacity", i)
			continue
		}
		require.Len(t, *trace, 1, "op %d", i)
		v := (*trace)[0]
		for other, p := range prio {
			require.LessOrEqual(t, prio[v], p, "op %d: evicted %d (priority %d) while %d has %d", i, v, prio[v], other, p)
		}
		age = max(age, prio[v])
		delete(prio, v)
		delete(hits, v)
		*trace = (*trace)[:0]
	}
}

// Get allocates nothing, hit or miss, for every policy.
func TestMemoryGetDoesNotAllocate(t *testing.T) {
	for _, p := range Policies {
		t.Run("policy="+p.String(), func(t *testing.T) {
			m, err := NewMemory(1000, MemoryOptions[string, int]{Policy: p, DefaultTTL: time.Hour})
			require.NoError(t, err)
			keys := make([]string, 2000)
			for i := range keys {
				keys[i] = fmt.Sprint("key:", i)
				if i < 500 {
					require.NoError(t, m.Set(keys[i], i))
				}
			}
			i := 0
			allocs := testing.AllocsPerRun(10000, func() {
				m.Get(keys[i%len(keys)])
				i++
			})
			assert.Zero(t, allocs)
			st := m.Stats()
			assert.Positive(t, st.Hits)
			assert.Positive(t, st.Misses)
		})
	}
}

// A rewrite that changes an entry's weight replaces its node, and the
// store's total follows: the lighter value frees room that the next insert
// takes without evicting.
func TestMemoryRewriteNewWeight(t *testing.T) {
	m, err := NewMemory(10, MemoryOptions[string, int]{Shards: 1, Weigher: func(_ string, v int) int64 { return int64(v) }})
	require.NoError(t, err)
	require.NoError(t, m.Set("a", 4))
	require.NoError(t, m.Set("b", 4))
	require.NoError(t, m.Set("a", 2))
	require.NoError(t, m.Set("c", 4))
	st := m.Stats()
	assert.Equal(t, int64(10), st.Weight, "a now weighs 2: a, b and c fit")
	assert.Equal(t, st.Weight, m.weight.Load(), "the store's total is the shards' sum")
	assert.Zero(t, st.Evicted)
	assert.Equal(t, uint64(1), st.Replaced)
}

// A write to a present key replaces the value in place: the old value is
// reported as replaced, and the write counts as a use of the key.
func TestMemoryRewriteCountsAsUse(t *testing.T) {
	var log evictLog
	m, err := NewMemory(3, MemoryOptions[string, int]{Policy: LRU, Shards: 1, OnEvict: log.add})
	require.NoError(t, err)
	for i, k := range []string{"a", "b", "c"} {
		require.NoError(t, m.Set(k, i))
	}
	require.NoError(t, m.Set("a", 10)) // b is now least recently used
	require.NoError(t, m.Set("d", 3))
	assert.Equal(t, []string{"a=0:replaced", "b=1:evicted"}, log.list())
	v, ok := m.Get("a")
	assert.True(t, ok)
	assert.Equal(t, 10, v)
	st := m.Stats()
	assert.Equal(t, uint64(1), st.Replaced)
	assert.Equal(t, 3, st.Entries)
}

// A lookup that found an entry expired removes it only if no write renewed
// it in the meantime.
func TestMemoryExpireSparesRenewedEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log evictLog
		m, err := NewMemory(10, MemoryOptions[string, int]{Shards: 1, OnEvict: log.add})
		require.NoError(t, err)
		require.NoError(t, m.SetWithTTL("k", 1, time.Second))
		s := &m.shards[0]
		stale := s.tab.Find(m.hash("k"), "k") // what a slow reader holds
		time.Sleep(time.Second)
		require.NoError(t, m.SetWithTTL("k", 2, time.Minute))
		m.expire(s, stale, time.Now().UnixNano()) // the slow reader catches up
		v, ok := m.Get("k")
		assert.True(t, ok, "renewed entry removed by a reader of the old one")
		assert.Equal(t, 2, v)
		assert.Equal(t, []string{"k=1:replaced"}, log.list())
	})
}

// The hill climber follows Caffeine's rule: the first step shrinks the
// window by 6.25% of the capacity; it keeps the direction while the hit
// ratio holds or rises and reverses it when it falls; small changes decay
// the step by 2%, a change of 5 points restarts it at 6.25%.
func TestHillClimberSteps(t *testing.T) {
	const capN = 1000
	c := newHillClimber(capN)
	sample := c.sampleSize
	// rate feeds one sample with the given hit ratio, in two batches as
	// the shard reports them, and returns the climber's adjustment.
	rate := func(r float64) int64 {
		hits := uint64(r * float64(sample))
		require.Zero(t, c.climb(hits/2, 0), "mid-sample")
		return c.climb(hits-hits/2, uint64(sample)-hits)
	}
	assert.Equal(t, int64(-62), rate(0.50), "first sample: from 0 to 50%, a restart-size move, shrinking")
	assert.Equal(t, int64(-62), rate(0.51), "the ratio rose: same direction, after a restart")
	assert.Equal(t, int64(-61), rate(0.52), "rose again: same direction, decayed 2%")
	assert.Equal(t, int64(60), rate(0.50), "it fell: the other direction")
	assert.Equal(t, int64(58), rate(0.50), "held: same direction, decayed")
	assert.Equal(t, int64(-57), rate(0.40), "a 10-point fall: reversed")
	assert.Equal(t, int64(-62), rate(0.40), "the fall restarted the step at 6.25%")
}

// recencyTrace returns a key stream in which most reads are of keys
// written a short while ago (a reuse distance below the capacity, as in a
// feed or a queue): recency predicts the next read and frequency does
// not, so a large window pays.
func recencyTrace(seed uint64, capN int) func() int {
	r := rand.New(rand.NewPCG(seed, seed))
	next := 0
	return func() int {
		if next == 0 || r.IntN(4) == 0 {
			next++
			return next
		}
		return max(0, next-1-int(r.ExpFloat64()*float64(capN)/3))
	}
}

// W-TinyLFU's window grows on a recency-biased trace, where a large
// window pays, and shrinks back on a frequency-biased one: a loop over 1.5×
// the capacity, on which recency is worthless (LRU hits nothing) and what
// the main area keeps is what hits.
func TestMemoryTinyLFUWindowAdapts(t *testing.T) {
	const capN = 1000
	m, err := NewMemory(capN, MemoryOptions[int, int]{Shards: 1, Hash: mixHash}) // reproducible
	require.NoError(t, err)
	p := m.shards[0].pol.(*tinyLFU[int, int])
	get := func(k int) {
		if _, ok := m.Get(k); !ok {
			require.NoError(t, m.Set(k, k))
		}
	}
	start := p.windowCap
	rec := recencyTrace(7, capN)
	for range 200 * capN {
		get(rec())
	}
	grown := p.windowCap
	t.Logf("window %d of %d at first, %d after the recency-biased trace", start, capN, grown)
	assert.Greater(t, grown, int64(capN/2), "the window grew on the recency-biased trace")

	for i := range 300 * capN {
		get(1<<30 + i%(3*capN/2))
	}
	t.Logf("window %d after the loop", p.windowCap)
	assert.Less(t, p.windowCap, grown/4, "the window shrank on the loop")
}

// When the working set moves, TinyLFU lets go of the old hot set as the
// sketch ages (its counters halve every 10×capacity lookups) and the new
// keys out-count the old ones, instead of holding it in the protected
// segment for good.
func TestMemoryTinyLFUFollowsShift(t *testing.T) {
	const capN, keys = 2000, 40_000
	m, err := NewMemory(capN, MemoryOptions[int, int]{Shards: 1, Hash: mixHash}) // reproducible
	require.NoError(t, err)
	z := rand.NewZipf(rand.New(rand.NewPCG(5, 6)), 1.1, 1, keys-1)
	get := func(k int) {
		if _, ok := m.Get(k); !ok {
			require.NoError(t, m.Set(k, k))
		}
	}
	for range 20 * capN {
		get(int(z.Uint64()))
	}
	for range 48 * capN { // the hot set moves to keys never read before
		get(keys + int(z.Uint64()))
	}
	old := 0
	m.shards[0].tab.Each(func(n *table.Node[int, int]) {
		if n.Key < keys {
			old++
		}
	})
	t.Logf("%d of %d entries are from the old working set", old, capN)
	assert.Less(t, old, capN/4)
}

// mixHash is a fixed hash for int keys (the splitmix64 finalizer), for
// tests whose outcome must not depend on maphash's random seed.
func mixHash(k int) uint64 {
	x := uint64(k)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// A store split into shards holds its whole capacity: every shard is used.
func TestMemoryShardedHoldsCapacity(t *testing.T) {
	for _, p := range Policies {
		t.Run("policy="+p.String(), func(t *testing.T) {
			const capN = 1 << 14
			m, err := NewMemory(capN, MemoryOptions[int, int]{Policy: p, Shards: 32, Hash: mixHash})
			require.NoError(t, err)
			for i := range 4 * capN {
				require.NoError(t, m.Set(i, i))
			}
			for i := range m.shards {
				assert.Positive(t, m.shards[i].tab.Len(), "shard %d unused", i)
			}
			assert.Greater(t, m.Len(), capN*99/100)
			assert.LessOrEqual(t, m.Len(), capN)
		})
	}
}

// Sharding costs no capacity: a store of capacity N, split into shards,
// evicts nothing until it holds N entries, then one entry per insertion;
// and a value may weigh up to the whole capacity, whatever the shards.
func TestMemoryFillsToCapacity(t *testing.T) {
	for _, p := range Policies {
		for _, capN := range []int{1000, 10_000} {
			t.Run(fmt.Sprintf("policy=%v/capacity=%d", p, capN), func(t *testing.T) {
				var evicted atomic.Int64
				m, err := NewMemory(capN, MemoryOptions[int, int]{Policy: p, Shards: 16,
					OnEvict: func(int, int, Reason) { evicted.Add(1) }})
				require.NoError(t, err)
				for i := range capN {
					require.NoError(t, m.Set(i, i))
				}
				assert.Zero(t, evicted.Load(), "evictions before the store held its capacity")
				assert.Equal(t, capN, m.Len())
				for i := range capN {
					require.NoError(t, m.Set(capN+i, i))
					require.Equal(t, int64(i+1), evicted.Load(), "one eviction per insertion into a full store")
				}
				assert.Equal(t, capN, m.Len())
			})
		}
	}
	t.Run("weigher", func(t *testing.T) {
		m, err := NewMemory(1000, MemoryOptions[int, []byte]{Policy: LRU, Shards: 16,
			Weigher: func(_ int, v []byte) int64 { return int64(len(v)) }})
		require.NoError(t, err)
		for i := range 10 {
			require.NoError(t, m.Set(i, make([]byte, 100)))
		}
		assert.Equal(t, int64(1000), m.Stats().Weight, "ten values of a tenth of the capacity each")
		require.NoError(t, m.Set(10, make([]byte, 900)), "heavier than a shard's share, lighter than the capacity")
		st := m.Stats()
		assert.LessOrEqual(t, st.Weight, int64(1000))
		_, ok := m.Get(10)
		assert.True(t, ok)
		require.ErrorIs(t, m.Set(11, make([]byte, 1001)), ErrTooLarge)
	})
}

// The shard's field groups fill whole cache lines: the table pointer every
// Get reads, the lock writers take, the dirty mask and each counter stripe
// never share a line, also across the shards of a slice.
func TestShardLayout(t *testing.T) {
	var s shard[string, []byte]
	for _, off := range []uintptr{unsafe.Offsetof(s.mu), unsafe.Offsetof(s.counts), unsafe.Sizeof(s), unsafe.Sizeof(s.counts)} {
		assert.Zero(t, off%cacheLine, "offset or size %d", off)
	}
	assert.Equal(t, uintptr(cacheLine), unsafe.Offsetof(s.mu))
	assert.Equal(t, uintptr(3*cacheLine), unsafe.Offsetof(s.counts))
}
