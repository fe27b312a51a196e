package keytable

import (
	"hash/maphash"
	"math/rand/v2"
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

// locate returns key's shard, hash and slot words.
func (t *Table[S]) locate(key string) (*shard[S], uint64, [2]uint64) {
	h := maphash.String(t.seed, key)
	return &t.shards[h>>(64-t.shardBits)&uint64(len(t.shards)-1)], h, pack(key, h)
}
