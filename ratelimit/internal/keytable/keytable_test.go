package keytable

import (
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// peek returns key's state, found by a scan rather than a probe.
func (t *Table[S]) peek(key string) (S, bool) {
	for i := range t.shards {
		sh := &t.shards[i]
		for j := range sh.slots {
			if lenOf(sh.slots[j].k) != 0 && sh.keyAt(uint64(j)) == key {
				return sh.slots[j].state, true
			}
		}
	}
	var zero S
	return zero, false
}

// modelKey returns the key numbered i, of one of the shapes a slot
// holds differently: short enough to be stored in the slot, 15 and 16
// bytes (the longest stored in the slot and the shortest not), long, and
// empty.
func modelKey(i int) string {
	s := strconv.Itoa(i)
	switch i % 5 {
	case 0:
		return "k" + s
	case 1:
		return s + strings.Repeat(".", 15-len(s))
	case 2:
		return s + strings.Repeat("-", 16-len(s))
	case 3:
		return "user-" + s + "@example.com/api/v1"
	}
	if i%100 == 4 {
		return ""
	}
	return "ip" + s
}

// The table against a map, through growth, sweeps that delete keys from
// the middle of probe runs, and evictions, with keys stored in their
// slots and beside them: every key the model holds is found by a probe
// from its home slot with its own state, and the table holds no other
// key. Shards of a few slots make keys share home slots all the time.
func TestTableMatchesModel(t *testing.T) {
	const maxKeys = 512
	tbl := New[int](maxKeys, 100, func() int { return 0 }, nil)
	model := map[string]int64{} // key -> last use
	counts := map[string]int{}
	rng := rand.New(rand.NewPCG(7, 9))
	var evicted []string
	tbl.onEvict = func(key string, idle bool) { evicted = append(evicted, key) }
	now := int64(1000)
	for step := range 50_000 {
		now += int64(rng.IntN(3))
		key := modelKey(rng.IntN(2000))
		r := tbl.Lock(key, now)
		*r.State++
		got := *r.State
		r.Unlock(true, 1)
		if _, ok := model[key]; !ok {
			counts[key] = 0
		}
		model[key] = now
		counts[key]++
		for _, k := range evicted {
			if _, ok := model[k]; !ok {
				t.Fatalf("step %d: evicted %q, not held", step, k)
			}
			delete(model, k)
			delete(counts, k)
		}
		evicted = evicted[:0]
		if got != counts[key] {
			t.Fatalf("step %d: %q has state %d, want %d", step, key, got, counts[key])
		}
		if step%5000 == 0 {
			tbl.Sweep(now)
			for _, k := range evicted {
				delete(model, k)
				delete(counts, k)
			}
			evicted = evicted[:0]
		}
	}
	if got := tbl.Len(); got != len(model) {
		t.Fatalf("Len %d, model %d", got, len(model))
	}
	if tbl.Len() > maxKeys {
		t.Fatalf("Len %d beyond MaxKeys %d", tbl.Len(), maxKeys)
	}
	for key, n := range counts {
		sh, h, k := tbl.locate(key)
		i, ok := sh.find(h, k, key)
		if !ok || sh.slots[i].state != n {
			t.Fatalf("%q: found %v with state %v, want %d", key, ok, sh.slots[i].state, n)
		}
	}
	for key := range model {
		if _, ok := tbl.peek(key); !ok {
			t.Fatalf("%q missing", key)
		}
	}
	s := tbl.Stats()
	if s.Allowed != 50_000 || s.EvictedIdle == 0 || s.EvictedCap == 0 {
		t.Fatalf("stats %+v: want 50,000 allowed and keys dropped both ways", s)
	}
}

// Long keys whose hashes collide, which a probe tells apart only by the
// keys themselves, stay apart through inserts and removals: each keeps
// its own state, and removing one leaves the others found.
func TestLongKeysWithOneHash(t *testing.T) {
	tbl := New[int](1, 1, func() int { return 0 }, nil)
	sh := &tbl.shards[0]
	const h = 5 // one hash for every key
	keys := []string{"first-long-key-of-one-hash", "second-long-key-of-one-hash", "third-long-key-of-one-hash"}
	for n, key := range keys {
		k := pack(key, h)
		if _, ok := sh.find(h, k, key); ok {
			t.Fatalf("%q found before insert", key)
		}
		sh.slots[sh.insert(tbl.seed, h, k, key, n+1)].last = 1
	}
	check := func(keys []string, want []int) {
		t.Helper()
		for n, key := range keys {
			i, ok := sh.find(h, pack(key, h), key)
			if !ok || sh.slots[i].state != want[n] || sh.keyAt(uint64(i)) != key {
				t.Fatalf("%q: found %v with state %d, want %d", key, ok, sh.slots[i].state, want[n])
			}
		}
	}
	check(keys, []int{1, 2, 3})
	i, _ := sh.find(h, pack(keys[0], h), keys[0])
	sh.remove(tbl.seed, uint64(i))
	if _, ok := sh.find(h, pack(keys[0], h), keys[0]); ok {
		t.Fatalf("%q found after remove", keys[0])
	}
	check(keys[1:], []int{2, 3})
	if sh.n != 2 {
		t.Fatalf("%d keys, want 2", sh.n)
	}
}

// pack lays out every key of 1 to 15 bytes as a slot stores it (its
// bytes in order, zeros after them, its length in byte 15), whatever its
// length does to the overlapping word reads; any other key becomes its
// hash and the long-key mark.
func FuzzPack(f *testing.F) {
	const distinct = "0123456789abcdefgh" // every byte differs, so a byte out of place shows
	for n := range len(distinct) + 1 {
		f.Add(distinct[:n], uint64(7)) // every length, through the first long one
	}
	for _, key := range []string{"1.2.3.4", "203.0.113.254", "user-42@example.com"} {
		f.Add(key, uint64(7))
	}
	f.Fuzz(func(t *testing.T, key string, h uint64) {
		got := pack(key, h)
		if len(key) == 0 || len(key) > inlineMax {
			if want := [2]uint64{h, longKey << 56}; got != want {
				t.Fatalf("pack(%q) = %x, want %x", key, got, want)
			}
			return
		}
		var want [16]byte
		copy(want[:], key)
		want[15] = byte(len(key))
		if b := unpack(got); b != want {
			t.Fatalf("pack(%q) lays out % x, want % x", key, b, want)
		}
	})
}

// locate returns key's shard, hash and slot words.
func (t *Table[S]) locate(key string) (*shard[S], uint64, [2]uint64) {
	h := maphash.String(t.seed, key)
	return &t.shards[h>>(64-t.shardBits)&uint64(len(t.shards)-1)], h, pack(key, h)
}

// use locks key at now, adds one to its state and unlocks it as allowed,
// returning the state.
func use(t *Table[int], key string, now int64) int {
	r := t.Lock(key, now)
	*r.State++
	n := *r.State
	r.Unlock(true, 1)
	return n
}

// MaxKeys is shared out among up to 64 shards of at least 8 keys each,
// rounded down to a multiple of their number.
func TestMaxKeys(t *testing.T) {
	for asked, want := range map[int]int{1: 1, 8: 8, 15: 15, 16: 16, 100: 96, 1000: 960, 2000: 1984, 100_000: 99_968} {
		if got := New[int](asked, 1, nil, nil).MaxKeys(); got != want {
			t.Errorf("New(%d).MaxKeys() = %d, want %d", asked, got, want)
		}
	}
}

// A table of up to 15 keys is one shard, and a full shard of up to 8
// keys evicts exactly its least recently used key.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	tbl := New(8, 1<<40, func() int { return 0 }, func(key string, idle bool) {
		if idle {
			t.Errorf("%q dropped as idle", key)
		}
		evicted = append(evicted, key)
	})
	now := int64(0)
	for _, key := range []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k0", "k5", "k2", "k7"} {
		now++
		use(tbl, key, now)
	}
	if len(evicted) != 0 {
		t.Fatalf("evicted %q before the table was full", evicted)
	}
	for i := range 6 {
		now++
		use(tbl, "new"+strconv.Itoa(i), now)
	}
	if want := []string{"k1", "k3", "k4", "k6", "k0", "k5"}; !slices.Equal(evicted, want) {
		t.Fatalf("evicted %q, want %q: least recently used first", evicted, want)
	}
	if s := tbl.Stats(); s.Keys != 8 || s.EvictedCap != 6 || s.EvictedIdle != 0 || s.Allowed != 18 {
		t.Fatalf("stats %+v, want 8 keys, 6 evicted for capacity, 18 allowed", s)
	}
}

// In a table of many shards, eviction compares 8 distinct keys of the
// full shard: a key in constant use is never evicted, and the keys a
// flood evicts are mostly those unused the longest.
func TestEvictionSparesRecentKeys(t *testing.T) {
	var stale, recent int
	hot := 0
	tbl := New(2048, 1<<40, func() int { return 0 }, func(key string, _ bool) {
		switch {
		case key == "hot":
			hot++
		case strings.HasPrefix(key, "stale"):
			stale++
		default:
			recent++
		}
	})
	now := int64(0)
	for _, wave := range []string{"stale", "used", "new"} {
		if wave == "new" {
			stale, recent = 0, 0
		}
		for i := range 1024 {
			now++
			use(tbl, "hot", now)
			use(tbl, wave+strconv.Itoa(i), now)
		}
	}
	if hot != 0 {
		t.Fatalf("the key in constant use was evicted %d times", hot)
	}
	// Measured: 2.4 to 3 stale keys for each recent one; evicting the
	// most recent of each sample gives about 1 for 20.
	if 2*stale <= 3*recent {
		t.Fatalf("the new wave evicted %d stale and %d recent keys: want mostly stale", stale, recent)
	}
	if got := use(tbl, "hot", now); got != 3*1024+1 {
		t.Fatalf("the hot key's state is %d, want %d: it was reset", got, 3*1024+1)
	}
}

// Sweep drops exactly the keys unused for the idle timeout, counting and
// reporting each as idle.
func TestSweep(t *testing.T) {
	var idle []string
	tbl := New(1000, 100, func() int { return 0 }, func(key string, isIdle bool) {
		if !isIdle {
			t.Errorf("%q dropped for capacity", key)
		}
		idle = append(idle, key)
	})
	for i := range 300 {
		use(tbl, "k"+strconv.Itoa(i), int64(1000+i%3)) // last use at 1000, 1001 or 1002
	}
	tbl.Sweep(1100) // idle for 100: the keys last used at 1000
	if len(idle) != 100 || tbl.Len() != 200 {
		t.Fatalf("swept %d keys, %d left: want 100 and 200", len(idle), tbl.Len())
	}
	for _, key := range idle {
		if n, _ := strconv.Atoi(key[1:]); n%3 != 0 {
			t.Fatalf("swept %q, used at %d: idle for less than the timeout", key, 1000+n%3)
		}
	}
	tbl.Sweep(1102)
	if s := tbl.Stats(); s.Keys != 0 || s.EvictedIdle != 300 || s.EvictedCap != 0 {
		t.Fatalf("stats %+v after sweeping every key: want 0 keys, 300 idle", s)
	}
}

// A newcomer sweeps its shard once a quarter of the idle timeout has
// passed since the shard's last sweep, so idle keys go without a Sweep
// call.
func TestArrivalSweeps(t *testing.T) {
	var idle []string
	tbl := New(8, 1000, func() int { return 0 }, func(key string, _ bool) { idle = append(idle, key) })
	use(tbl, "a", 0)    // sweeps the empty shard at 0
	use(tbl, "b", 750)  // sweeps at 750: nothing idle
	use(tbl, "c", 1000) // a quarter of the timeout after: a, idle exactly 1000, goes
	if !slices.Equal(idle, []string{"a"}) || tbl.Len() != 2 {
		t.Fatalf("dropped %q, %d left: want a dropped, b and c left", idle, tbl.Len())
	}
	use(tbl, "b", 1100) // a known key sweeps nothing
	use(tbl, "d", 2000) // c is idle, b is not
	if !slices.Equal(idle, []string{"a", "c"}) || tbl.Len() != 2 {
		t.Fatalf("dropped %q, %d left: want a and c dropped, b and d left", idle, tbl.Len())
	}
}

// A key used at a steady pace is never idle, however often the shard is
// swept; its state survives.
func TestKeyInUseIsNeverIdle(t *testing.T) {
	tbl := New(16, 100, func() int { return 0 }, func(key string, _ bool) {
		if key == "busy" {
			t.Fatalf("busy dropped")
		}
	})
	for now := int64(0); now < 10_000; now += 99 {
		use(tbl, "busy", now)
		use(tbl, "visitor"+strconv.FormatInt(now, 10), now)
		tbl.Sweep(now + 98)
	}
	if got := use(tbl, "busy", 10_000); got != 103 { // 102 uses in the loop
		t.Fatalf("busy's state is %d, want 103", got)
	}
}

// A shard doubles its slots when a key would fill more than 7/8 of them,
// so a key costs between 8/7 and 16/7 slots.
func TestSlotsPerKey(t *testing.T) {
	tbl := New(15, 1<<40, func() int { return 0 }, nil) // one shard
	sh := &tbl.shards[0]
	for n := 1; n <= 15; n++ { // 7 keys in 8 slots, 14 in 16, 15 in 32
		use(tbl, "k"+strconv.Itoa(n), int64(n))
		want := 8 // the fewest slots, at least 8, that n keys fill no more than 7/8 of
		for n*8 > want*7 {
			want *= 2
		}
		if len(sh.slots) != want {
			t.Fatalf("%d keys in %d slots, want %d", n, len(sh.slots), want)
		}
	}
}

// Unlock counts the events it is told of, allowed or denied.
func TestStatsCount(t *testing.T) {
	tbl := New(100, 1<<40, func() int { return 0 }, nil)
	r := tbl.Lock("a", 1)
	r.Unlock(true, 3)
	r = tbl.Lock("a", 2)
	r.Unlock(false, 2)
	r = tbl.Lock("b", 3)
	r.Unlock(false, 1)
	if s := tbl.Stats(); s != (Stats{Keys: 2, Allowed: 3, Denied: 3}) {
		t.Fatalf("stats %+v", s)
	}
}

// Eviction compares every key of a shard of up to 8, wherever its scan
// starts: with the keys in slots 0 to 7, the least recently used goes,
// in slot 0 as in any other.
func TestEvictionScansFromAnySlot(t *testing.T) {
	for lru := range 8 {
		for start := range uint64(16) {
			tbl := New(8, 1<<40, func() int { return 0 }, nil)
			sh := &tbl.shards[0]
			var keys []string
			for i := range uint64(8) {
				key := "a-key-longer-than-fifteen-bytes-" + strconv.FormatUint(i, 10)
				j := sh.insert(tbl.seed, i, pack(key, i), key, 0)
				if j != int(i) {
					t.Fatalf("%q in slot %d, want %d", key, j, i)
				}
				sh.slots[j].last = int64(100 + (int(i)-lru+8)%8) // slot lru is the oldest
				keys = append(keys, key)
			}
			sh.rng = start // xorshift of start picks the scan's first slot
			tbl.evictOneLocked(sh, nil)
			if _, ok := sh.find(uint64(lru), pack(keys[lru], uint64(lru)), keys[lru]); ok || sh.n != 7 {
				t.Fatalf("least recently used in slot %d, scan seed %d: still held (%d keys)", lru, start, sh.n)
			}
		}
	}
}
