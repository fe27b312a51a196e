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

	"github.com/sysdesign-go/sysdesign/cache/internal/table"
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
	// shard holds at least 64 units. The capacity is the whole store's,
	// not split among the shards: the store holds capacity units, in
	// whatever shards they hash to, before it evicts.
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
// state. A Get takes no lock: writers link and unlink the table's nodes
// with atomic stores, and an entry is one node — key, value, expiry and the
// policy's links in one allocation (see internal/table) — so a hit reads no
// other memory. The access is recorded for the policy in that same
// node — a saturating hit count (LFU, TinyLFU) or the shard's current epoch
// (LRU) — and the policy applies it lazily, when it next chooses a victim
// under the lock (see lru.go, lfu.go, tinylfu.go). This is lazy promotion,
// as in CLOCK and S3-FIFO, where Caffeine and otter replay a read buffer
// under the lock: a read costs a map lookup whatever the policy, reads never
// block each other and never allocate, and a hot key, once its mark is set,
// is read by every core without a write to its memory. The hit and miss
// counters of [Memory.Stats] are striped per goroutine (see stripe.go); for
// TinyLFU a stripe also buffers the hashes of missed keys, which the next
// write replays into the sketch. Writes lock one shard; inserting a key
// allocates its node, while rewriting a present key stores the new value in
// its node — without allocating when the value is a word without pointers
// or a single pointer — and counts as a read of it.
// Expired entries are never returned; they are removed when found, when
// evicted, or by [Memory.Cleanup].
//
// Memory is safe for concurrent use. Create it with [NewMemory]. A zero
// Memory holds nothing: reads miss, deletions do nothing, and writes (and
// the [Store] methods) return an error wrapping [ErrInvalidConfig].
type Memory[K comparable, V any] struct {
	// weight is the total weight stored, on cache lines of its own: writes
	// that insert change it, while every Get reads the fields below.
	_      [cacheLine]byte
	weight atomic.Int64
	_      [cacheLine - 8]byte

	seed       maphash.Seed
	shards     []shard[K, V]
	mask       uint64
	capacity   int64
	defaultTTL time.Duration
	weigher    func(K, V) int64
	onEvict    func(K, V, Reason)
	now        func() time.Time
	hasher     func(K) uint64
	hitLimit   uint32 // LFU, TinyLFU: saturation of node.touch
	policy     Policy
}

func (m *Memory[K, V]) hash(key K) uint64 {
	if m.hasher != nil {
		return m.hasher(key)
	}
	return maphash.Comparable(m.seed, key)
}

// observeEvery is the number of writes between two reports of the
// lookups to the policy.
const observeEvery = 16

// shard keeps the table pointer every Get loads on its own cache line, away
// from the mutex that writes take: otherwise each lock by one core would
// evict the line from every other core reading the shard.
//
// Each group of fields fills whole cache lines (the padding is checked by
// a test), so shards in a slice, and the counter stripes in a shard (see
// stripe.go), stay aligned to lines.
type shard[K comparable, V any] struct {
	tab      table.Table[K, V] // readers: lock-free; writers: mu
	capacity int64             // immutable: the share of the capacity the policy is sized for
	epoch    atomic.Uint32     // LRU: the current epoch; written under mu, read by Get
	_        [cacheLine - 36]byte
	mu       sync.Mutex
	pol      policy[K, V] // guarded by mu
	weight   int64        // guarded by mu
	removed  [4]uint64    // guarded by mu: removals by Reason
	tick     uint64       // guarded by mu: writes so far
	// seenHits and seenMisses are the lookups already reported to the
	// policy's observe, guarded by mu.
	seenHits, seenMisses uint64
	_                    [2*cacheLine - 88]byte
	// counts are the hit and miss counts Stats reports and, for TinyLFU,
	// the recent misses the next write replays into the sketch.
	counts counters
}

// node is one stored entry: the table's node carries the key, the value
// and the expiry readers see, and the fields the policy keeps (Slot, Prev,
// Next, Weight), in one allocation. The shard's lock guards the policy's
// fields; the weight never changes.
type node[K comparable, V any] = table.Node[K, V]

// takeHits returns the reads counted in e since the last call and clears
// the count. It requires the shard's lock.
func takeHits[K comparable, V any](e *node[K, V]) uint32 {
	if e.Mark.Load() == 0 {
		return 0
	}
	return e.Mark.Swap(0)
}

// policy orders a shard's entries for eviction. Its methods are called with
// the shard's lock held. Reads reach it only through the marks in the
// entries — hit counts (takeHits) or LRU epochs — which victim applies as
// it sees fit.
type policy[K comparable, V any] interface {
	add(e *node[K, V])
	remove(e *node[K, V])
	// victim returns the entry to evict next; the shard then removes it.
	victim() *node[K, V]
	// update tells the policy that e's expiry changed in place.
	update(e *node[K, V])
	// miss records a lookup of an absent key.
	miss(hash uint64)
	// observe reports a batch of lookups, for policies that tune
	// themselves on the hit ratio.
	observe(hits, misses uint64)
}

func newPolicy[K comparable, V any](p Policy, capacity int64, epoch *atomic.Uint32) (policy[K, V], uint32) {
	switch p {
	case LRU:
		return newLRU[K, V](capacity, epoch), 0
	case LFU:
		return newLFU[K, V](), lfuHitLimit
	case TTLOnly:
		return &ttlPolicy[K, V]{}, 0
	default:
		return newTinyLFU[K, V](capacity), tinyLFUHitLimit
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
		s.tab.Init(int(min(c, 1<<16)))
		s.capacity = c
		s.pol, m.hitLimit = newPolicy[K, V](opts.Policy, c, &s.epoch)
	}
	return m, nil
}

func (m *Memory[K, V]) shardOf(h uint64) *shard[K, V] { return &m.shards[h&m.mask] }

// Get returns the value stored under key. Expired entries are never
// returned. It does not allocate.
func (m *Memory[K, V]) Get(key K) (V, bool) {
	s, n := m.lookup(key)
	if n == nil {
		var zero V
		return zero, false
	}
	return s.tab.Value(n), true
}

// lookup finds the live entry for key and records the access.
func (m *Memory[K, V]) lookup(key K) (*shard[K, V], *node[K, V]) {
	if m.shards == nil {
		return nil, nil // a zero Memory holds nothing
	}
	h := m.hash(key)
	s := m.shardOf(h)
	n := s.tab.Find(h, key)
	if n != nil {
		if exp := n.Expire(); exp != 0 {
			if now := m.now().UnixNano(); now >= exp {
				m.expire(s, n, now)
				n = nil
			}
		}
	}
	i := stripeHint(h & m.mask)
	if n == nil {
		s.counts.miss(i, h, m.policy == TinyLFU)
		return s, nil
	}
	s.counts.hit(i)
	m.record(s, n)
	return s, n
}

// lookups returns the shard's hits and misses so far.
func (s *shard[K, V]) lookups() (hits, misses uint64) { return s.counts.sum() }

// observe reports the lookups counted since the last call to the policy.
// It reads every counter stripe — lines other cores write — so writes call
// it once per observeEvery, not each time. It requires s.mu.
func (s *shard[K, V]) observe() {
	hits, misses := s.lookups()
	s.pol.observe(hits-s.seenHits, misses-s.seenMisses)
	s.seenHits, s.seenMisses = hits, misses
}

// removal is an entry that left the store, reported to OnEvict after the
// lock is released.
type removal[K comparable, V any] struct {
	key    K
	value  V
	reason Reason
}

// unlink removes e, which is in s, from the map and the policy, and
// returns it as a removal for r. It requires s.mu.
func (m *Memory[K, V]) unlink(s *shard[K, V], e *node[K, V], r Reason) removal[K, V] {
	m.weight.Add(-e.Weight)
	return m.detach(s, e, r)
}

// detach is unlink without taking e's weight off the store's total, which
// the caller settles. It requires s.mu.
func (m *Memory[K, V]) detach(s *shard[K, V], e *node[K, V], r Reason) removal[K, V] {
	s.tab.Delete(e)
	s.pol.remove(e)
	s.weight -= e.Weight
	s.removed[r]++
	return removal[K, V]{e.Key, s.tab.Value(e), r}
}

// expire removes e, which a lookup found expired at now, unless a write
// removed or renewed it meanwhile.
func (m *Memory[K, V]) expire(s *shard[K, V], e *node[K, V], now int64) {
	s.mu.Lock()
	if exp := e.Expire(); exp == 0 || now < exp || s.tab.Find(e.Hash, e.Key) != e {
		s.mu.Unlock()
		return
	}
	r := m.unlink(s, e, Expired)
	s.mu.Unlock()
	m.report(r)
}

// report passes removals to OnEvict. It runs after the shard's lock is
// released.
func (m *Memory[K, V]) report(rs ...removal[K, V]) {
	if m.onEvict == nil {
		return
	}
	for _, r := range rs {
		m.onEvict(r.key, r.value, r.reason)
	}
}

// record tells the policy that n was read (or rewritten).
func (m *Memory[K, V]) record(s *shard[K, V], n *node[K, V]) {
	switch m.policy {
	case LRU:
		n.Stamp(s.epoch.Load())
	case LFU, TinyLFU:
		n.Touch(m.hitLimit)
	}
}

// Set stores value under key with the default TTL. It fails with
// [ErrTooLarge] when the value weighs more than the store's capacity.
func (m *Memory[K, V]) Set(key K, value V) error { return m.SetWithTTL(key, value, 0) }

// SetWithTTL stores value under key for ttl; 0 means the default TTL.
func (m *Memory[K, V]) SetWithTTL(key K, value V, ttl time.Duration) error {
	if m.shards == nil {
		return errZero("Memory", "NewMemory")
	}
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
	if w > m.capacity {
		return wrapf(ErrTooLarge, "cache: value for key %v weighs %d, more than the capacity (%d)", key, w, m.capacity)
	}
	var buf [2]removal[K, V] // the replaced value and one victim, in the common case
	gone := buf[:0]
	s.mu.Lock()
	s.tick++
	if m.policy == TinyLFU {
		s.counts.replay(s.pol.miss)
		if s.tick%observeEvery == 0 {
			s.observe()
		}
	}
	old := s.tab.Find(h, key)
	if old != nil && old.Weight == w {
		// Rewrite in place: the entry keeps its node and its place in the
		// policy, and the write counts as a read of it, as in Caffeine. (A
		// new weight changes the sums the policy keeps: that takes the
		// remove-and-insert path below.)
		gone = append(gone, removal[K, V]{old.Key, s.tab.Value(old), Replaced})
		s.removed[Replaced]++
		s.tab.Store(old, value, expire)
		m.record(s, old)
		s.pol.update(old)
		s.mu.Unlock()
		m.report(gone...)
		return nil
	}
	delta := w // the change to the store's total weight, not yet added
	if old != nil {
		gone = append(gone, m.detach(s, old, Replaced))
		delta -= old.Weight
	}
	e := s.tab.New(h, key, value, expire)
	e.Weight = w
	s.tab.Insert(e)
	s.weight += w
	s.pol.add(e)
	gone = m.evict(s, gone, e, delta)
	s.mu.Unlock()
	m.report(gone...)
	if m.weight.Load() > m.capacity { // at == evict would find nothing to do: >= agrees
		m.evictElsewhere(s)
	}
	return nil
}

// evict removes the victims of s's policy while the store is over its
// capacity and s has entries other than added (the entry just inserted,
// or nil), and returns gone with them appended. delta is a change to the
// store's total weight that s holds but the total does not count yet. The
// capacity is the store's: a write evicts from the shard it locked, so the
// store holds its whole capacity whatever the spread of keys over the
// shards. It requires s.mu.
//
// A full store's insert that evicts as much as it adds leaves the total
// as it was, so the victims are weighed against delta and only the
// difference is added: such an insert does not write the total, a line
// every other core's writes read. (A write to another shard may have
// taken the room meanwhile: the writer sees the total over the capacity
// after it unlocks and evicts elsewhere.)
func (m *Memory[K, V]) evict(s *shard[K, V], gone []removal[K, V], added *node[K, V], delta int64) []removal[K, V] {
	var now int64
	for m.weight.Load()+delta > m.capacity && s.tab.Len() > 0 && (s.tab.Len() > 1 || added == nil) {
		v := s.pol.victim()
		r := Evicted
		if exp := v.Expire(); exp != 0 {
			if now == 0 {
				now = m.now().UnixNano()
			}
			if now >= exp {
				r = Expired
			}
		}
		if v == added {
			added = nil // what is left is older
		}
		gone = append(gone, m.detach(s, v, r))
		delta -= v.Weight
	}
	if delta != 0 {
		m.weight.Add(delta)
	}
	return gone
}

// evictElsewhere evicts from the other shards, one lock at a time, while
// the store is still over its capacity after a write to s: when s held
// only the entry it added (heavy entries or few of them), or when writes
// to other shards took the room as s found it. Both are rare.
func (m *Memory[K, V]) evictElsewhere(s *shard[K, V]) {
	for i := range m.shards {
		if m.weight.Load() <= m.capacity { // at == evict would find nothing to do: < agrees
			return
		}
		o := &m.shards[i]
		if o == s {
			continue
		}
		o.mu.Lock()
		gone := m.evict(o, nil, nil, 0)
		o.mu.Unlock()
		m.report(gone...)
	}
}

// Delete removes key and reports whether it was present (expired entries
// count as absent).
func (m *Memory[K, V]) Delete(key K) bool {
	if m.shards == nil {
		return false
	}
	h := m.hash(key)
	s := m.shardOf(h)
	s.mu.Lock()
	e := s.tab.Find(h, key)
	if e == nil {
		s.mu.Unlock()
		return false
	}
	r := Deleted
	if exp := e.Expire(); exp != 0 && m.now().UnixNano() >= exp {
		r = Expired
	}
	gone := m.unlink(s, e, r)
	s.mu.Unlock()
	m.report(gone)
	return r == Deleted
}

// DeleteFunc removes every entry for which match returns true and returns
// how many it removed: delete by prefix, by tag stored in the value, or by
// any other rule. match runs under a shard's lock and must not call the
// store.
func (m *Memory[K, V]) DeleteFunc(match func(key K, value V) bool) int {
	return m.removeWhere(func(s *shard[K, V], e *node[K, V]) bool { return match(e.Key, s.tab.Value(e)) }, Deleted)
}

// Cleanup removes every expired entry now and returns how many it removed.
// Expired entries are never returned by Get, so calling Cleanup is only
// needed to free their memory early; it walks the whole store.
func (m *Memory[K, V]) Cleanup() int {
	if m.shards == nil {
		return 0
	}
	now := m.now().UnixNano()
	return m.removeWhere(func(_ *shard[K, V], e *node[K, V]) bool {
		exp := e.Expire()
		return exp != 0 && now >= exp
	}, Expired)
}

// removeWhere removes every entry match selects, shard by shard, and
// reports them after each shard's lock is released.
func (m *Memory[K, V]) removeWhere(match func(s *shard[K, V], e *node[K, V]) bool, r Reason) int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		var gone []removal[K, V]
		var es []*node[K, V]
		s.mu.Lock()
		s.tab.Each(func(e *node[K, V]) {
			if match(s, e) {
				es = append(es, e)
			}
		})
		for _, e := range es {
			gone = append(gone, m.unlink(s, e, r))
		}
		s.mu.Unlock()
		n += len(gone)
		m.report(gone...)
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
		n += s.tab.Len()
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
		hits, misses := s.lookups()
		st.Hits += hits
		st.Misses += misses
		s.mu.Lock()
		st.Evicted += s.removed[Evicted]
		st.Expired += s.removed[Expired]
		st.Deleted += s.removed[Deleted]
		st.Replaced += s.removed[Replaced]
		st.Entries += s.tab.Len()
		st.Weight += s.weight
		s.mu.Unlock()
	}
	return st
}

// AsStore returns m as a [Store], for the patterns ([Aside],
// [WriteThrough], [WriteBehind], [RefreshAhead]): its Get also returns the
// remaining TTL (0 for none), its Set is [Memory.SetWithTTL] and its Delete
// is [Memory.Delete]. The context is not used; the errors are those of a
// zero Memory, a bad TTL and [ErrTooLarge].
func (m *Memory[K, V]) AsStore() Store[K, V] { return memoryStore[K, V]{m} }

// memoryStore is a [Memory] seen as a [Store].
type memoryStore[K comparable, V any] struct{ m *Memory[K, V] }

func (s memoryStore[K, V]) Get(_ context.Context, key K) (V, time.Duration, bool, error) {
	m := s.m
	if m == nil || m.shards == nil {
		var zero V
		return zero, 0, false, errZero("Memory", "NewMemory")
	}
	sh, n := m.lookup(key)
	if n == nil {
		var zero V
		return zero, 0, false, nil
	}
	var ttl time.Duration
	if exp := n.Expire(); exp != 0 {
		ttl = max(time.Duration(exp-m.now().UnixNano()), 1)
	}
	return sh.tab.Value(n), ttl, true, nil
}

func (s memoryStore[K, V]) Set(_ context.Context, key K, value V, ttl time.Duration) error {
	if s.m == nil {
		return errZero("Memory", "NewMemory")
	}
	return s.m.SetWithTTL(key, value, ttl)
}

func (s memoryStore[K, V]) Delete(_ context.Context, key K) error {
	if s.m == nil || s.m.shards == nil {
		return errZero("Memory", "NewMemory")
	}
	s.m.Delete(key)
	return nil
}
