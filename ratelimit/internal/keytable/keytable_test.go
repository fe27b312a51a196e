package keytable

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
)

// peek returns key's state, found by a scan rather than a probe.
func (t *Table[S]) peek(key string) (S, bool) {
	for i := range t.shards {
		sh := &t.shards[i]
		for j, tg := range sh.tags {
			if tg != 0 && sh.slots[j].key == key {
				return sh.slots[j].state, true
			}
		}
	}
	var zero S
	return zero, false
}

// The table against a map, through growth, sweeps that delete keys from
// the middle of probe runs, and evictions: every key the model holds is
// found by a probe from its home slot with its own state, and the table
// holds no other key.
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
		key := "k" + strconv.Itoa(rng.IntN(2000))
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
			delete(model, k)
			delete(counts, k)
		}
		evicted = evicted[:0]
		if got != counts[key] {
			t.Fatalf("step %d: %s has state %d, want %d", step, key, got, counts[key])
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
		h := hashOf(tbl, key)
		sh := &tbl.shards[h>>(64-tbl.shardBits)&uint64(len(tbl.shards)-1)]
		i, ok := sh.find(h, key)
		if !ok || sh.slots[i].state != n {
			t.Fatalf("%s: found %v with state %v, want %d", key, ok, sh.slots[i].state, n)
		}
	}
	for key := range model {
		if _, ok := tbl.peek(key); !ok {
			t.Fatalf("%s missing", key)
		}
	}
	s := tbl.Stats()
	if s.Allowed != 50_000 || s.EvictedIdle == 0 || s.EvictedCap == 0 {
		t.Fatalf("stats %+v: want 50,000 allowed and keys dropped both ways", s)
	}
}

func hashOf[S any](t *Table[S], key string) uint64 { return maphash.String(t.seed, key) }
