package cache

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Policy selects how a [Memory] store chooses what to evict.
type Policy uint8

// Eviction policies. The zero value is [TinyLFU].
const (
	// TinyLFU is Window-TinyLFU (see tinylfu.go): a small LRU window in
	// front of a segmented LRU, with a frequency sketch deciding which of a
	// window victim and a main victim stays. It resists scans and tracks
	// shifting popularity; the default.
	TinyLFU Policy = iota
	// LRU evicts the least recently used entry (see lru.go).
	LRU
	// LFU evicts the least frequently used entry, with dynamic aging so old
	// popularity decays (see lfu.go).
	LFU
	// TTLOnly evicts the entry that expires soonest, first in first out
	// among entries with the same expiry (see ttl.go).
	TTLOnly
)

// String returns the policy's name: "tinylfu", "lru", "lfu" or "ttl".
func (p Policy) String() string {
	switch p {
	case TinyLFU:
		return "tinylfu"
	case LRU:
		return "lru"
	case LFU:
		return "lfu"
	case TTLOnly:
		return "ttl"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Policies lists every policy, for tables of tests and benchmarks.
var Policies = []Policy{TinyLFU, LRU, LFU, TTLOnly}

// MemoryOptions configures a [Memory] store. The zero value is a TinyLFU
// store without expiry in which every entry weighs 1.
type MemoryOptions[K comparable, V any] struct {
	// Policy chooses the eviction policy. Default [TinyLFU].
	Policy Policy
	// DefaultTTL is the lifetime of entries stored with [Memory.Set] or a
	// TTL of 0. Default 0: entries do not expire.
	DefaultTTL time.Duration
	// Weigher returns the weight of an entry; the store's capacity then
	// bounds the total weight rather than the entry count. Default nil:
	// every entry weighs 1. It must be fast and must not call the store.
	Weigher func(key K, value V) int64
	// Shards is the number of independently locked shards, a power of two.
	// Default 0: sixteen per CPU, fewer for small capacities so that each
	// shard holds at least 64 units. Each shard owns capacity/Shards, so a
	// single value may weigh at most that.
	Shards int
	// OnEvict is called after an entry leaves the store, with the reason.
	// It runs on the goroutine that caused the removal, never under a lock
	// of the store, so it may call the store. Default nil.
	OnEvict func(key K, value V, reason Reason)
	// Now returns the current time. Default nil: time.Now.
	Now func() time.Time
	// Hash hashes keys, choosing shards, buckets and sketch counters.
	// Default nil: hash/maphash with a random seed. Set it for
	// reproducible eviction decisions across runs (simulations), or for
	// key types maphash handles slowly. It must spread keys well.
	Hash func(key K) uint64
}

// Memory is an in-process cache (the GUIDE's L1): a bounded map from keys
// to values with per-entry TTL and a choice of eviction [Policy].
//
// It is split into shards, each with its own lock, hash table and policy
// state. A Get takes no lock — the table's chains are immutable and
// published atomically, and a chain node carries the key, value and expiry
// so a hit reads no other memory — and records the access in a small lossy
// ring buffer that is replayed into the policy under the lock later (when
// the ring fills or the next write arrives), the design of Caffeine and
// otter: reads never block each other and never allocate. Each goroutine
// writes its own ring of a shard (see stripeHint), so cores reading the
// same hot key do not write the same cache line, and a hit on an entry that
// was recorded a moment ago is not recorded again (see node.record), so a
// hot set is read without writes at all. Writes lock one shard and
// allocate an entry.
// Expired entries are never returned; they are removed when found, when
// evicted, or by [Memory.Cleanup].
//
// Memory is safe for concurrent use. Create it with [NewMemory].
type Memory[K comparable, V any] struct {
	seed       maphash.Seed
	shards     []shard[K, V]
	mask       uint64
	capacity   int64
	defaultTTL time.Duration
	weigher    func(K, V) int64
	onEvict    func(K, V, Reason)
	now        func() time.Time
	hasher     func(K) uint64
	policy     Policy
}

func (m *Memory[K, V]) hash(key K) uint64 {
	if m.hasher != nil {
		return m.hasher(key) | 1
	}
	return maphash.Comparable(m.seed, key) | 1 // 0 marks an empty ring slot
}

const (
	ringSize   = 16 // accesses buffered per stripe before replay
	stripeBits = 3
	stripes    = 1 << stripeBits // rings per shard, chosen per goroutine (stripeHint)
)

// shard keeps the table pointer every Get loads on its own cache line, away
// from the mutex that replays and writes take: otherwise each TryLock by
// one core would evict the line from every other core reading the shard.
type shard[K comparable, V any] struct {
	tab      hashTable[K, V] // readers: lock-free; writers: mu
	capacity int64           // immutable
	_        [cacheLine]byte
	mu       sync.Mutex
	epoch    atomic.Uint64 // replays so far, from epochBase
	skip     uint64        // immutable: see node.record
	pol      policy[K, V]  // guarded by mu
	weight   int64         // guarded by mu
	removed  [4]uint64     // guarded by mu: removals by Reason
	tick     uint64        // guarded by mu: insertion counter
	_        [cacheLine]byte
	stripes  [stripes]stripe[K, V]
}

const cacheLine = 64

// stripe buffers accesses for replay into the policy. hits and misses are
// the exact counters Stats reports; head and misses are the tails of the
// reads and missed rings.
type stripe[K comparable, V any] struct {
	// The counters share one line, so a write scanning every stripe for
	// pending accesses reads one line per stripe.
	hits   atomic.Uint64 // every hit, for Stats
	head   atomic.Uint64 // hits recorded in reads
	misses atomic.Uint64 // every miss; also the tail of missed
	reads  [ringSize]atomic.Pointer[entry[K, V]]
	missed [ringSize]atomic.Uint64 // key hashes; 0 marks an empty slot
	// readDone and missDone are the tails already replayed, guarded by the
	// shard's lock: replay visits only the slots filled since.
	readDone, missDone uint64
	_                  [cacheLine]byte
}

// entry is immutable after insertion except for the policy fields, which
// the shard's lock guards.
type entry[K comparable, V any] struct {
	key    K
	value  V
	hash   uint64
	expire int64 // UnixNano; 0 = never
	weight int64

	prev, next *entry[K, V] // list policies
	pushed     uint64       // list policies: the list's push count at e's push
	queue      uint8        // TinyLFU segment
	idx        int          // heap policies
	prio       int64        // heap policies
	seq        uint64       // heap policies: tie-break
	dead       bool         // removed from the store
}

// epochBase is a shard's first epoch, so that a new node (seen = 0) is
// always recorded.
const epochBase = 1 << 32

// record reports whether a hit on n's entry should go to the read buffer.
// A hit is dropped when an earlier hit on the entry was recorded fewer than
// s.skip replays ago: a replay applies at most ringSize reads, so (writes
// aside) the entry is then still among the most recent skip×ringSize ≤
// capacity/8 of its shard, and promoting it again would change nothing
// that eviction looks at (compare the lazy promotion in lru.go). This keeps a hot key from
// filling the buffers — and the replays from moving it over and over — and
// is what lets reads of a hot set proceed without writes. Shards of fewer
// than 128 entries (skip 0) record every hit, so small stores order entries
// exactly.
//
// The mark lives in the node, which the lookup has just read, not in the
// entry, which the replay writes: a dropped hit touches no other memory.
// A chain edit copies the node and its mark, so the rule holds for a copy
// too; at worst a hit is recorded once more.
func (n *node[K, V]) record(s *shard[K, V]) bool {
	if s.skip == 0 {
		return true
	}
	ep := s.epoch.Load()
	if ep-n.seen.Load() < s.skip {
		return false
	}
	n.seen.Store(ep)
	return true
}

// policy orders a shard's entries for eviction. Its methods are called with
// the shard's write lock held.
type policy[K comparable, V any] interface {
	add(e *entry[K, V])
	access(e *entry[K, V])
	remove(e *entry[K, V])
	// victim returns the entry to evict next; the shard then removes it.
	victim() *entry[K, V]
	// miss records a lookup of an absent key.
	miss(hash uint64)
}

func newPolicy[K comparable, V any](p Policy, capacity int64) policy[K, V] {
	switch p {
	case LRU:
		return &lruPolicy[K, V]{}
	case LFU:
		return &lfuPolicy[K, V]{}
	case TTLOnly:
		return &ttlPolicy[K, V]{}
	default:
		return newTinyLFU[K, V](capacity)
	}
}

// NewMemory returns a store holding at most capacity entries (or, with a
// [MemoryOptions.Weigher], at most capacity units of weight).
func NewMemory[K comparable, V any](capacity int, opts MemoryOptions[K, V]) (*Memory[K, V], error) {
	if capacity <= 0 {
		return nil, invalid("capacity must be positive, got %d", capacity)
	}
	if opts.Policy > TTLOnly {
		return nil, invalid("unknown policy %d", opts.Policy)
	}
	if opts.DefaultTTL < 0 {
		return nil, invalid("negative default TTL %v", opts.DefaultTTL)
	}
	n := opts.Shards
	switch {
	case n < 0 || n&(n-1) != 0:
		return nil, invalid("shards must be a power of two, got %d", n)
	case n > capacity:
		return nil, invalid("shards (%d) exceed capacity (%d)", n, capacity)
	case n == 0:
		n = 1 << bits.Len(uint(16*runtime.GOMAXPROCS(0)-1))
		for n > 1 && capacity/n < 64 {
			n /= 2
		}
	}
	m := &Memory[K, V]{
		seed: maphash.MakeSeed(), shards: make([]shard[K, V], n), mask: uint64(n - 1),
		capacity: int64(capacity), defaultTTL: opts.DefaultTTL, weigher: opts.Weigher,
		onEvict: opts.OnEvict, now: nowFunc(opts.Now), hasher: opts.Hash, policy: opts.Policy,
	}
	for i := range m.shards {
		c := int64(capacity / n)
		if i < capacity%n {
			c++
		}
		s := &m.shards[i]
		s.tab.cur.Store(newTable[K, V](2 * int(min(c, 1<<16))))
		s.capacity = c
		s.skip = uint64(c) / (8 * ringSize)
		s.epoch.Store(epochBase)
		s.pol = newPolicy[K, V](opts.Policy, c)
	}
	return m, nil
}

func (m *Memory[K, V]) shardOf(h uint64) *shard[K, V] { return &m.shards[h&m.mask] }

// Get returns the value stored under key. Expired entries are never
// returned. It does not allocate.
func (m *Memory[K, V]) Get(key K) (V, bool) {
	n := m.lookup(key)
	if n == nil {
		var zero V
		return zero, false
	}
	return n.value, true
}

// lookup finds the live entry for key and records the access.
func (m *Memory[K, V]) lookup(key K) *node[K, V] {
	h := m.hash(key)
	s := m.shardOf(h)
	n := s.tab.find(h, key)
	if n != nil && n.expire != 0 && m.now().UnixNano() >= n.expire {
		m.expire(s, n.e)
		n = nil
	}
	st := &s.stripes[stripeHint(h&m.mask)]
	if n == nil {
		i := st.misses.Add(1) - 1
		if m.policy == TinyLFU {
			st.missed[i%ringSize].Store(h)
			if i%ringSize == ringSize-1 {
				s.tryReplay(st)
			}
		}
		return nil
	}
	st.hits.Add(1)
	if m.policy != TTLOnly && n.record(s) {
		i := st.head.Add(1) - 1
		st.reads[i%ringSize].Store(n.e)
		if i%ringSize == ringSize-1 {
			s.tryReplay(st)
		}
	}
	return n
}

// stripeHint picks the read stripe for the calling goroutine: a hash of
// the address of a local variable, which lies on the goroutine's own
// stack, mixed with the shard's index. Goroutines running in parallel
// therefore write different stripes (and cache lines) even when they read
// the same hot key, while one goroutine keeps using one stripe per shard,
// so a single-threaded run replays accesses in order and stays
// reproducible. Choosing the stripe by key instead would make every core
// reading a hot key write the same cache line.
func stripeHint(shard uint64) uint64 {
	var local byte
	sp := uint64(uintptr(unsafe.Pointer(&local))) >> 11 // stacks are ≥2 KiB apart
	return ((sp ^ shard<<32) * 0x9e3779b97f4a7c15) >> (64 - stripeBits)
}

// tryReplay replays the accesses buffered in st, the caller's own stripe
// (so the lines it touches are already in the caller's core cache), if the
// write lock is free; a busy lock means a writer will replay them soon, and
// accesses overwritten meanwhile are dropped (the buffers are lossy).
func (s *shard[K, V]) tryReplay(st *stripe[K, V]) {
	if s.mu.TryLock() {
		s.replayStripe(st)
		s.mu.Unlock()
	}
}

// replay feeds every stripe's buffered accesses to the policy. It requires
// s.mu held for writing.
func (s *shard[K, V]) replay() {
	for j := range s.stripes {
		s.replayStripe(&s.stripes[j])
	}
}

// replayStripe feeds st's buffered accesses to the policy. It requires s.mu
// held for writing.
func (s *shard[K, V]) replayStripe(st *stripe[K, V]) {
	s.epoch.Add(1)
	if tail := st.head.Load(); tail != st.readDone {
		for i := max(st.readDone, tail-min(tail, ringSize)); i < tail; i++ {
			if e := st.reads[i%ringSize].Swap(nil); e != nil && !e.dead {
				s.pol.access(e)
			}
		}
		st.readDone = tail
	}
	if tail := st.misses.Load(); tail != st.missDone {
		for i := max(st.missDone, tail-min(tail, ringSize)); i < tail; i++ {
			if h := st.missed[i%ringSize].Swap(0); h != 0 {
				s.pol.miss(h)
			}
		}
		st.missDone = tail
	}
}

// removal is an entry that left the store, reported to OnEvict after the
// lock is released.
type removal[K comparable, V any] struct {
	e      *entry[K, V]
	reason Reason
}

// unlink removes e from the map and the policy. It requires s.mu held for
// writing.
func (s *shard[K, V]) unlink(e *entry[K, V], r Reason) {
	s.tab.del(e)
	s.pol.remove(e)
	e.dead = true
	s.weight -= e.weight
	s.removed[r]++
}

func (m *Memory[K, V]) expire(s *shard[K, V], e *entry[K, V]) {
	s.mu.Lock()
	if e.dead {
		s.mu.Unlock()
		return
	}
	s.unlink(e, Expired)
	s.mu.Unlock()
	if m.onEvict != nil {
		m.onEvict(e.key, e.value, Expired)
	}
}

func (m *Memory[K, V]) report(rs []removal[K, V]) {
	if m.onEvict == nil {
		return
	}
	for _, r := range rs {
		m.onEvict(r.e.key, r.e.value, r.reason)
	}
}

// Set stores value under key with the default TTL. It fails with
// [ErrTooLarge] when the value weighs more than a shard can hold.
func (m *Memory[K, V]) Set(key K, value V) error { return m.SetWithTTL(key, value, 0) }

// SetWithTTL stores value under key for ttl; 0 means the default TTL.
func (m *Memory[K, V]) SetWithTTL(key K, value V, ttl time.Duration) error {
	if ttl < 0 {
		return invalid("negative TTL %v for key %v", ttl, key)
	}
	if ttl == 0 {
		ttl = m.defaultTTL
	}
	var expire int64
	if ttl > 0 {
		expire = m.now().Add(ttl).UnixNano()
	}
	return m.set(key, value, expire)
}

// set stores value under key until expire (UnixNano; 0 = never).
func (m *Memory[K, V]) set(key K, value V, expire int64) error {
	w := int64(1)
	if m.weigher != nil {
		w = m.weigher(key, value)
		if w < 0 {
			return invalid("weigher returned negative weight %d for key %v", w, key)
		}
	}
	h := m.hash(key)
	s := m.shardOf(h)
	if w > s.capacity {
		return wrapf(ErrTooLarge, "cache: value for key %v weighs %d, more than a shard holds (%d of capacity %d)", key, w, s.capacity, m.capacity)
	}
	e := &entry[K, V]{key: key, value: value, hash: h, expire: expire, weight: w}
	var gone []removal[K, V]
	s.mu.Lock()
	s.replay()
	s.tick++
	e.seq = s.tick
	if old := s.tab.put(e); old != nil {
		s.pol.remove(old)
		old.dead = true
		s.weight -= old.weight
		s.removed[Replaced]++
		gone = append(gone, removal[K, V]{old, Replaced})
	}
	s.weight += w
	s.pol.add(e)
	if s.weight > s.capacity {
		now := m.now().UnixNano()
		for s.weight > s.capacity {
			v := s.pol.victim()
			r := Evicted
			if v.expire != 0 && now >= v.expire {
				r = Expired
			}
			s.unlink(v, r)
			gone = append(gone, removal[K, V]{v, r})
		}
	}
	s.mu.Unlock()
	m.report(gone)
	return nil
}

// Delete removes key and reports whether it was present (expired entries
// count as absent).
func (m *Memory[K, V]) Delete(key K) bool {
	h := m.hash(key)
	s := m.shardOf(h)
	s.mu.Lock()
	e := s.tab.get(h, key)
	if e == nil {
		s.mu.Unlock()
		return false
	}
	r := Deleted
	if e.expire != 0 && m.now().UnixNano() >= e.expire {
		r = Expired
	}
	s.unlink(e, r)
	s.mu.Unlock()
	m.report([]removal[K, V]{{e, r}})
	return r == Deleted
}

// DeleteFunc removes every entry for which match returns true and returns
// how many it removed: delete by prefix, by tag stored in the value, or by
// any other rule. match runs under a shard's lock and must not call the
// store.
func (m *Memory[K, V]) DeleteFunc(match func(key K, value V) bool) int {
	return m.removeWhere(func(e *entry[K, V]) bool { return match(e.key, e.value) }, Deleted)
}

// Cleanup removes every expired entry now and returns how many it removed.
// Expired entries are never returned by Get, so calling Cleanup is only
// needed to free their memory early; it walks the whole store.
func (m *Memory[K, V]) Cleanup() int {
	now := m.now().UnixNano()
	return m.removeWhere(func(e *entry[K, V]) bool { return e.expire != 0 && now >= e.expire }, Expired)
}

// removeWhere removes every entry match selects, shard by shard, and
// reports them after each shard's lock is released.
func (m *Memory[K, V]) removeWhere(match func(e *entry[K, V]) bool, r Reason) int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		var gone []removal[K, V]
		s.mu.Lock()
		s.tab.each(func(e *entry[K, V]) {
			if match(e) {
				gone = append(gone, removal[K, V]{e, r})
			}
		})
		for _, g := range gone {
			s.unlink(g.e, r)
		}
		s.mu.Unlock()
		n += len(gone)
		m.report(gone)
	}
	return n
}

// Len returns the number of entries stored, including expired ones not yet
// removed.
func (m *Memory[K, V]) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.tab.count
		s.mu.Unlock()
	}
	return n
}

// Capacity returns the capacity the store was created with.
func (m *Memory[K, V]) Capacity() int64 { return m.capacity }

// MemoryStats is a snapshot of a [Memory] store's counters.
type MemoryStats struct {
	Hits, Misses uint64
	// Evicted, Expired, Deleted and Replaced count removals by [Reason].
	Evicted, Expired, Deleted, Replaced uint64
	Entries                             int
	Weight                              int64
}

// HitRatio returns Hits / (Hits + Misses), 0 before any lookup.
func (s MemoryStats) HitRatio() float64 { return hitRatio(s.Hits, s.Misses) }

// Stats returns the store's counters. It takes each shard's lock briefly.
func (m *Memory[K, V]) Stats() MemoryStats {
	var st MemoryStats
	for i := range m.shards {
		s := &m.shards[i]
		for j := range s.stripes {
			st.Hits += s.stripes[j].hits.Load()
			st.Misses += s.stripes[j].misses.Load()
		}
		s.mu.Lock()
		st.Evicted += s.removed[Evicted]
		st.Expired += s.removed[Expired]
		st.Deleted += s.removed[Deleted]
		st.Replaced += s.removed[Replaced]
		st.Entries += s.tab.count
		st.Weight += s.weight
		s.mu.Unlock()
	}
	return st
}

// Lookup implements [Store]: the value, its remaining TTL (0 for none) and
// whether it was found. The error is always nil.
func (m *Memory[K, V]) Lookup(_ context.Context, key K) (V, time.Duration, bool, error) {
	n := m.lookup(key)
	if n == nil {
		var zero V
		return zero, 0, false, nil
	}
	var ttl time.Duration
	if n.expire != 0 {
		ttl = max(time.Duration(n.expire-m.now().UnixNano()), 1)
	}
	return n.value, ttl, true, nil
}

// Save implements [Store] with [Memory.SetWithTTL].
func (m *Memory[K, V]) Save(_ context.Context, key K, value V, ttl time.Duration) error {
	return m.SetWithTTL(key, value, ttl)
}

// Remove implements [Store] with [Memory.Delete].
func (m *Memory[K, V]) Remove(_ context.Context, key K) error {
	m.Delete(key)
	return nil
}

var _ Store[string, int] = (*Memory[string, int])(nil)
