// Package keytable is the table behind ratelimit.Keyed: a hash table
// from key to a limiter's state, the state stored inline beside the key
// and the time of its last use, so that a key costs one slot and no
// object of its own. It is sharded, each shard under one mutex, and
// bounded: at its capacity a new key evicts the least recently used of
// a few sampled keys, and keys unused for the idle timeout are swept.
//
// Each shard is an open-addressing table with linear probing: a byte of
// tag per slot (zero when empty, else seven bits of the key's hash)
// steers probes past slots of other keys without reading them, and
// deletion shifts the following slots back instead of leaving
// tombstones.
package keytable

import (
	"hash/maphash"
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

type slot[S any] struct {
	key   string
	last  int64 // Unix ns of the last use
	state S
}

type shard[S any] struct {
	mu        sync.Mutex
	tags      []uint8   // guarded by mu: 0 = empty, else 0x80 | 7 bits of hash
	slots     []slot[S] // guarded by mu
	n         int       // guarded by mu: keys held
	lastSweep int64     // guarded by mu: Unix ns
	rng       uint64    // guarded by mu: xorshift state for eviction samples

	// Counters, guarded by mu.
	allowed, denied, evictedIdle, evictedCap uint64
	_                                        [40]byte
}

// Stats are a table's counters.
type Stats struct {
	Keys                                     int
	Allowed, Denied, EvictedIdle, EvictedCap uint64
}

// New returns a table of at most maxKeys keys (rounded down to a multiple
// of the shard count), dropping keys idle for idle ns. fresh is the state
// of a new key; onEvict, if not nil, hears of every dropped key (idle
// false: dropped for capacity), outside the lock.
func New[S any](maxKeys int, idle int64, fresh func() S, onEvict func(key string, idle bool)) *Table[S] {
	t := &Table[S]{seed: maphash.MakeSeed(), idle: idle, fresh: fresh, onEvict: onEvict}
	n := 1
	for n < 64 && n*2 <= maxKeys {
		n *= 2
		t.shardBits++
	}
	t.shards = make([]shard[S], n)
	t.perShard = maxKeys / n
	for i := range t.shards {
		t.shards[i].rng = uint64(i)*0x9E3779B97F4A7C15 | 1
	}
	return t
}

// MaxKeys returns the bound on keys.
func (t *Table[S]) MaxKeys() int { return t.perShard * len(t.shards) }

// minSlots is the size of a shard's first table.
const minSlots = 8

// Ref is a key's state with the key's shard locked, from [Table.Lock].
type Ref[S any] struct {
	State *S
	t     *Table[S]
	sh    *shard[S]
	gone  []evicted
}

// Lock returns key's state at now, with the key's shard locked, creating
// the state (and making room for it) if the key is new. The caller
// changes the state in place and then calls Unlock. A method taking the
// change as a function would cost the caller an allocation per call for
// the closure.
func (t *Table[S]) Lock(key string, now int64) Ref[S] {
	h := maphash.String(t.seed, key)
	sh := &t.shards[h>>(64-t.shardBits)&uint64(len(t.shards)-1)]
	sh.mu.Lock()
	i, ok := sh.find(h, key)
	var gone []evicted
	if !ok {
		gone = t.makeRoom(sh, now)
		i = sh.insert(t.seed, h, key, t.fresh())
	}
	sl := &sh.slots[i]
	sl.last = max(sl.last, now)
	return Ref[S]{State: &sl.state, t: t, sh: sh, gone: gone}
}

// Unlock counts n events allowed or denied and unlocks the shard. Then
// it reports the keys Lock dropped to make room.
func (r Ref[S]) Unlock(allowed bool, n uint64) {
	if allowed {
		r.sh.allowed += n
	} else {
		r.sh.denied += n
	}
	r.sh.mu.Unlock()
	if r.gone != nil {
		r.t.report(r.gone)
	}
}

// tag returns the tag of hash h: never zero, the mark of an empty slot.
func tag(h uint64) uint8 { return 0x80 | uint8(h>>48)&0x7f }

// find returns the slot holding key, or false. It requires that mu is held.
func (sh *shard[S]) find(h uint64, key string) (int, bool) {
	if len(sh.tags) == 0 {
		return 0, false
	}
	mask := uint64(len(sh.tags) - 1)
	tg := tag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		switch sh.tags[i] {
		case 0:
			return 0, false
		case tg:
			if sh.slots[i].key == key {
				return int(i), true
			}
		}
	}
}

// insert puts a key known to be absent in the first empty slot of its
// probe sequence, growing the table first if it would pass 7/8 full. It
// requires that mu is held.
func (sh *shard[S]) insert(seed maphash.Seed, h uint64, key string, s S) int {
	if (sh.n+1)*8 > len(sh.tags)*7 {
		sh.grow(seed)
	}
	mask := uint64(len(sh.tags) - 1)
	i := h & mask
	for sh.tags[i] != 0 {
		i = (i + 1) & mask
	}
	sh.tags[i] = tag(h)
	sh.slots[i] = slot[S]{key: key, state: s}
	sh.n++
	return int(i)
}

// grow doubles the table and re-inserts every key. It requires that mu
// is held.
func (sh *shard[S]) grow(seed maphash.Seed) {
	tags, slots := sh.tags, sh.slots
	size := max(2*len(tags), minSlots)
	sh.tags, sh.slots = make([]uint8, size), make([]slot[S], size)
	mask := uint64(size - 1)
	for j, tg := range tags {
		if tg == 0 {
			continue
		}
		i := maphash.String(seed, slots[j].key) & mask
		for sh.tags[i] != 0 {
			i = (i + 1) & mask
		}
		sh.tags[i], sh.slots[i] = tg, slots[j]
	}
}

// remove empties slot i and shifts back the slots after it that probed
// past it, so that every key stays reachable from its home slot. It
// requires that mu is held.
func (sh *shard[S]) remove(seed maphash.Seed, i uint64) {
	mask := uint64(len(sh.tags) - 1)
	for j := (i + 1) & mask; sh.tags[j] != 0; j = (j + 1) & mask {
		home := maphash.String(seed, sh.slots[j].key) & mask
		// j's key may move to i when its home is not cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			sh.tags[i], sh.slots[i] = sh.tags[j], sh.slots[j]
			i = j
		}
	}
	sh.tags[i], sh.slots[i] = 0, slot[S]{}
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
	if now-sh.lastSweep >= t.idle/4 {
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
	for i := 0; i < len(sh.tags); {
		if sh.tags[i] != 0 && now-sh.slots[i].last >= t.idle {
			if t.onEvict != nil {
				gone = append(gone, evicted{sh.slots[i].key, true})
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

// evictOneLocked drops the least recently used of a few randomly sampled
// keys. It requires that mu is held and that the shard holds a key.
func (t *Table[S]) evictOneLocked(sh *shard[S], gone []evicted) []evicted {
	mask := uint64(len(sh.tags) - 1)
	victim := -1
	for range evictSample {
		// xorshift64: a cheap generator, guarded by the shard lock
		sh.rng ^= sh.rng << 13
		sh.rng ^= sh.rng >> 7
		sh.rng ^= sh.rng << 17
		i := sh.rng & mask
		for sh.tags[i] == 0 {
			i = (i + 1) & mask
		}
		if victim < 0 || sh.slots[i].last < sh.slots[victim].last {
			victim = int(i)
		}
	}
	if t.onEvict != nil {
		gone = append(gone, evicted{sh.slots[victim].key, false})
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
