// Package keytable is the table behind ratelimit.Keyed: a hash table
// from key to a limiter's state, the state stored inline beside the key
// and the time of its last use, so that a key costs one slot and no
// object of its own. It is sharded, each shard under one mutex, and
// bounded: at its capacity a new key evicts the least recently used of
// a few sampled keys, and keys unused for the idle timeout are swept.
//
// Each shard is an open-addressing table with linear probing, deletion
// shifting the following slots back instead of leaving tombstones. A key
// of up to 15 bytes, such as an IPv4 address, is stored in its slot, so
// that a lookup compares whole keys while it probes: it reads the home
// slot and, at most loads, the one after it, both usually in one cache
// line or the next, and nothing else. (A byte of hash per slot in an
// array of its own, as Swiss tables keep, would cost a second cache miss
// per lookup once the table outgrows the cache.)
package keytable

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync"
)

// Table maps keys to states of type S. It is safe for concurrent use.
type Table[S any] struct {
	seed      maphash.Seed
	shardBits uint
	perShard  int   // keys a shard holds at most
	idle      int64 // ns
	fresh     func() S
	onEvict   func(key string, idle bool)
	shards    []shard[S]
}

// A slot holds a key, the time of its last use and its state. A key of
// 1 to 15 bytes (an IPv4 address, a short IPv6 address or user ID) is
// stored in k itself, its length in the top byte of k[1], so that a
// probe compares the key without leaving the slot and the slots of a
// pointer-free state hold nothing for the garbage collector to scan. A
// longer (or empty) key keeps its hash in k[0] and longKey in the top
// byte, and the key itself in the shard's longs, beside the slot. A top
// byte of zero marks an empty slot.
type slot[S any] struct {
	k     [2]uint64
	last  int64 // Unix ns of the last use
	state S
}

// inlineMax is the longest key stored in a slot; longKey marks a slot
// whose key is not.
const (
	inlineMax = 15
	longKey   = 0xff
)

// pack returns the slot words of key, whose hash is h: the bytes of a
// short key little-endian in k[0] and the low bytes of k[1], its length
// in the top byte, as unpack reads them. It reads the key a word or half
// a word at a time, overlapping where the length is not a multiple (the
// bytes read twice are the same, so or-ing them is exact): copying the
// bytes into a buffer and reading the words back would cost a stalled
// store-to-load forward on every lookup.
func pack(key string, h uint64) [2]uint64 {
	n := len(key)
	if uint(n)-1 >= inlineMax { // also an empty key: 0-1 wraps
		return [2]uint64{h, longKey << 56}
	}
	var lo, hi uint64
	// (A key of exactly 8 bytes reads the same by either of the first two
	// branches: n > 8 would serve as well as n >= 8.)
	if n >= 8 {
		lo = le64(key)
		hi = le64(key[n-8:]) >> (8 * (16 - n)) // bytes 8 to n-1; none when n is 8
	} else if n >= 4 {
		lo = uint64(le32(key)) | uint64(le32(key[n-4:]))<<(8*(n-4))
	} else { // 1 to 3 bytes
		lo = uint64(key[0]) | uint64(key[n/2])<<(8*(n/2)) | uint64(key[n-1])<<(8*(n-1))
	}
	return [2]uint64{lo, hi | uint64(n)<<56}
}

// le64 returns the first 8 bytes of s, little-endian.
func le64(s string) uint64 {
	_ = s[7] // one bounds check for the eight reads, which the compiler merges into one load
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// le32 returns the first 4 bytes of s, little-endian.
func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// unpack returns the bytes of slot words k, a key stored in the slot.
func unpack(k [2]uint64) [16]byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], k[0])
	binary.LittleEndian.PutUint64(b[8:], k[1])
	return b
}

// lenOf returns the length byte of slot words k: zero when empty.
func lenOf(k [2]uint64) uint8 { return uint8(k[1] >> 56) }

type shard[S any] struct {
	mu        sync.Mutex
	slots     []slot[S] // guarded by mu
	longs     []string  // guarded by mu: beside slots, the keys too long for a slot; nil until the first
	n         int       // guarded by mu: keys held
	lastSweep int64     // guarded by mu: Unix ns
	rng       uint64    // guarded by mu: xorshift state for eviction samples
	gone      []evicted // guarded by mu: the keys Lock dropped, for Unlock to report
	t         *Table[S]

	// Counters, guarded by mu.
	allowed, denied, evictedIdle, evictedCap uint64
	_                                        [48]byte // to 192 bytes: a shard's lock and counters share no cache line with the next's
}

// Stats are a table's counters.
type Stats struct {
	Keys                                     int
	Allowed, Denied, EvictedIdle, EvictedCap uint64
}

// New returns a table of at most maxKeys keys (rounded down to a multiple
// of the shard count), dropping keys idle for idle ns. Instants are Unix
// ns within ±2⁶², where the time between two never overflows, and idle
// is not negative. fresh is the state
// of a new key; onEvict, if not nil, hears of every dropped key (idle
// false: dropped for capacity), outside the lock.
//
// The shard count is the largest power of two up to maxShards that
// leaves each shard room for a whole eviction sample, so that eviction
// compares keys: a shard of one key would evict the key in constant use
// to make room for any newcomer.
func New[S any](maxKeys int, idle int64, fresh func() S, onEvict func(key string, idle bool)) *Table[S] {
	t := &Table[S]{seed: maphash.MakeSeed(), idle: idle, fresh: fresh, onEvict: onEvict}
	n := 1
	// (Stopping at n*2*evictSample == maxKeys instead would give half as
	// many shards of twice the keys, the same bound: either is right.)
	for n < maxShards && n*2*evictSample <= maxKeys {
		n *= 2
		t.shardBits++
	}
	t.shards = make([]shard[S], n)
	t.perShard = maxKeys / n
	for i := range t.shards {
		// Any odd seed serves: the shards need not differ, since each
		// samples its own slots. (Hence no test tells this multiplier
		// from another.)
		t.shards[i].rng = uint64(i)*0x9E3779B97F4A7C15 | 1
		t.shards[i].lastSweep = math.MinInt64
		t.shards[i].t = t
	}
	return t
}

// MaxKeys returns the bound on keys.
func (t *Table[S]) MaxKeys() int { return t.perShard * len(t.shards) }

// minSlots is the size of a shard's first table; maxShards bounds the
// shard count.
const (
	minSlots  = 8
	maxShards = 64
)

// Ref is a key's state with the key's shard locked, from [Table.Lock].
type Ref[S any] struct {
	State *S
	sh    *shard[S]
}

// Lock returns key's state at now, with the key's shard locked, creating
// the state (and making room for it) if the key is new. The caller
// changes the state in place and then calls Unlock. A method taking the
// change as a function would cost the caller an allocation per call for
// the closure.
func (t *Table[S]) Lock(key string, now int64) Ref[S] {
	h := maphash.String(t.seed, key)
	k := pack(key, h)
	sh := &t.shards[h>>(64-t.shardBits)&uint64(len(t.shards)-1)]
	sh.mu.Lock()
	i, ok := sh.find(h, k, key)
	if !ok {
		i = t.add(sh, h, k, key, now)
	}
	sl := &sh.slots[i]
	sl.last = max(sl.last, now)
	return Ref[S]{State: &sl.state, sh: sh}
}

// add makes room for key, new to the shard, and inserts it with the
// fresh state, recording in gone what it dropped. It requires that mu
// is held.
func (t *Table[S]) add(sh *shard[S], h uint64, k [2]uint64, key string, now int64) int {
	sh.gone = t.makeRoom(sh, now)
	i := sh.insert(t.seed, h, k, key, t.fresh())
	sh.slots[i].last = now
	return i
}

// Unlock counts n events allowed or denied and unlocks the shard. Then
// it reports the keys Lock dropped to make room.
func (r Ref[S]) Unlock(allowed bool, n uint64) {
	sh := r.sh
	if allowed {
		sh.allowed += n
	} else {
		sh.denied += n
	}
	if sh.gone == nil {
		sh.mu.Unlock()
		return
	}
	gone := sh.gone
	sh.gone = nil
	sh.mu.Unlock()
	sh.t.report(gone)
}

// find returns the slot holding key, whose hash is h and slot words k,
// or false. It requires that mu is held.
func (sh *shard[S]) find(h uint64, k [2]uint64, key string) (int, bool) {
	if len(sh.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(sh.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &sh.slots[i]
		if sl.k == k {
			if lenOf(k) != longKey || sh.longs[i] == key {
				return int(i), true
			}
		} else if lenOf(sl.k) == 0 {
			return 0, false
		}
	}
}

// keyAt returns the key in the full slot i. It requires that mu is held.
func (sh *shard[S]) keyAt(i uint64) string {
	k := sh.slots[i].k
	if lenOf(k) == longKey {
		return sh.longs[i]
	}
	b := unpack(k)
	return string(b[:lenOf(k)])
}

// hashOf returns the hash of the key of slot words k, not empty.
func hashOf(seed maphash.Seed, k [2]uint64) uint64 {
	if lenOf(k) == longKey {
		return k[0]
	}
	b := unpack(k)
	return maphash.Bytes(seed, b[:lenOf(k)])
}

// insert puts a key known to be absent in the first empty slot of its
// probe sequence, growing the table first if it would pass 7/8 full. It
// requires that mu is held.
func (sh *shard[S]) insert(seed maphash.Seed, h uint64, k [2]uint64, key string, s S) int {
	if (sh.n+1)*8 > len(sh.slots)*7 {
		sh.grow(seed)
	}
	mask := uint64(len(sh.slots) - 1)
	i := h & mask
	for lenOf(sh.slots[i].k) != 0 {
		i = (i + 1) & mask
	}
	sh.slots[i] = slot[S]{k: k, state: s}
	if lenOf(k) == longKey {
		if sh.longs == nil {
			sh.longs = make([]string, len(sh.slots))
		}
		sh.longs[i] = key
	}
	sh.n++
	return int(i)
}

// grow doubles the table and re-inserts every key. It requires that mu
// is held.
func (sh *shard[S]) grow(seed maphash.Seed) {
	slots, longs := sh.slots, sh.longs
	size := max(2*len(slots), minSlots)
	sh.slots = make([]slot[S], size)
	if longs != nil {
		sh.longs = make([]string, size)
	}
	mask := uint64(size - 1)
	for j := range slots {
		if lenOf(slots[j].k) == 0 {
			continue
		}
		i := hashOf(seed, slots[j].k) & mask
		for lenOf(sh.slots[i].k) != 0 {
			i = (i + 1) & mask
		}
		sh.slots[i] = slots[j]
		if longs != nil {
			sh.longs[i] = longs[j]
		}
	}
}

// remove empties slot i and shifts back the slots after it that probed
// past it, so that every key stays reachable from its home slot. It
// requires that mu is held.
func (sh *shard[S]) remove(seed maphash.Seed, i uint64) {
	mask := uint64(len(sh.slots) - 1)
	for j := (i + 1) & mask; lenOf(sh.slots[j].k) != 0; j = (j + 1) & mask {
		home := hashOf(seed, sh.slots[j].k) & mask
		// j's key may move to i when its home is not cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			sh.slots[i] = sh.slots[j]
			if sh.longs != nil {
				sh.longs[i] = sh.longs[j]
			}
			i = j
		}
	}
	sh.slots[i] = slot[S]{}
	if sh.longs != nil {
		sh.longs[i] = ""
	}
	sh.n--
}

type evicted struct {
	key  string
	idle bool
}

// makeRoom sweeps the shard if a quarter of the idle timeout has passed
// since its last sweep, then evicts until a new key fits. It requires
// that mu is held.
func (t *Table[S]) makeRoom(sh *shard[S], now int64) []evicted {
	var gone []evicted
	// The quarter bounds the cost of sweeping, not what is dropped: a
	// sweep at every new key would drop the same keys (idle for the
	// timeout) a little sooner, at the cost of a scan of the shard per
	// key, which the benchmarks show and no test does.
	// (Subtracting from now, which lies within ±2⁶², cannot overflow:
	// lastSweep starts at math.MinInt64, before any now.)
	if now-t.idle/4 >= sh.lastSweep {
		gone = t.sweepLocked(sh, now, gone)
	}
	for sh.n >= t.perShard {
		gone = t.evictOneLocked(sh, gone)
	}
	return gone
}

// sweepLocked drops the shard's idle keys. It requires that mu is held.
func (t *Table[S]) sweepLocked(sh *shard[S], now int64, gone []evicted) []evicted {
	sh.lastSweep = now
	for i := 0; i < len(sh.slots); {
		if lenOf(sh.slots[i].k) != 0 && now-sh.slots[i].last >= t.idle {
			if t.onEvict != nil {
				gone = append(gone, evicted{sh.keyAt(uint64(i)), true})
			}
			sh.remove(t.seed, uint64(i))
			sh.evictedIdle++
			continue // a later key may have moved into slot i
		}
		i++
	}
	return gone
}

// evictSample is how many keys eviction compares, as Redis's LRU does.
const evictSample = 8

// evictOneLocked drops the least recently used of evictSample keys (or
// of every key of a smaller shard) held in consecutive slots from a
// random one on, as Redis samples neighbouring buckets: the keys are
// distinct, so the victim is never one of the evictSample−1 most
// recently used keys of the shard, and a scan of neighbours costs a
// cache line where random slots would cost one each. Slot order follows
// the keys' hashes, not their use, so the sample is as fair as a random
// one. It requires that mu is held and that the shard holds a key.
func (t *Table[S]) evictOneLocked(sh *shard[S], gone []evicted) []evicted {
	mask := uint64(len(sh.slots) - 1)
	// xorshift64: a cheap generator, guarded by the shard lock
	sh.rng ^= sh.rng << 13
	sh.rng ^= sh.rng >> 7
	sh.rng ^= sh.rng << 17
	victim := -1
	// (Scanning backwards, or one key more, would serve as well: the
	// guarantee is that the victim is no more recent than 7 others.)
	for i, seen := sh.rng&mask, 0; seen < min(evictSample, sh.n); i = (i + 1) & mask {
		if lenOf(sh.slots[i].k) == 0 {
			continue
		}
		seen++
		// Among keys last used at the same instant any may go: < or <=
		// only changes which.
		if victim < 0 || sh.slots[i].last < sh.slots[victim].last {
			victim = int(i)
		}
	}
	if t.onEvict != nil {
		gone = append(gone, evicted{sh.keyAt(uint64(victim)), false})
	}
	sh.remove(t.seed, uint64(victim))
	sh.evictedCap++
	return gone
}

func (t *Table[S]) report(gone []evicted) {
	for _, g := range gone {
		t.onEvict(g.key, g.idle)
	}
}

// Sweep drops every key idle at now.
func (t *Table[S]) Sweep(now int64) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		gone := t.sweepLocked(sh, now, nil)
		sh.mu.Unlock()
		t.report(gone)
	}
}

// Len returns the number of keys held.
func (t *Table[S]) Len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// Stats returns a snapshot of the counters.
func (t *Table[S]) Stats() Stats {
	var s Stats
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		s.Keys += sh.n
		s.Allowed += sh.allowed
		s.Denied += sh.denied
		s.EvictedIdle += sh.evictedIdle
		s.EvictedCap += sh.evictedCap
		sh.mu.Unlock()
	}
	return s
}
