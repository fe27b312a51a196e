package cache

import (
	"testing"
	"time"
)

// FuzzMemory drives a store with a random sequence of operations and
// checks the invariants users rely on against a plain map: a Get returns
// the value of the latest Set of that key or nothing (never a stale or
// foreign value, never an expired one), the store never holds more than
// its capacity, and every entry that left was reported once.
func FuzzMemory(f *testing.F) {
	f.Add(uint8(0), uint8(4), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 2, 2})
	f.Add(uint8(1), uint8(1), []byte{9, 8, 7, 200, 100, 50, 25})
	f.Add(uint8(2), uint8(7), []byte{255, 0, 255, 0, 128, 64, 32, 16})
	f.Add(uint8(3), uint8(3), []byte{10, 20, 30, 40, 50, 60, 70})
	f.Fuzz(func(t *testing.T, policy, capacity uint8, ops []byte) {
		now := time.Unix(1000, 0)
		capN := int(capacity%16) + 1
		live := map[uint8]int{} // key -> latest value set
		var reported int
		m, err := NewMemory(capN, MemoryOptions[uint8, int]{
			Policy: Policies[int(policy)%len(Policies)], Shards: 1,
			Now:     func() time.Time { return now },
			OnEvict: func(uint8, int, Reason) { reported++ },
		})
		if err != nil {
			t.Fatal(err)
		}
		sets := 0
		for i, op := range ops {
			k := op % 32
			switch op >> 6 {
			case 0, 1:
				ttl := time.Duration(op%4) * time.Second
				if err := m.SetWithTTL(k, i, ttl); err != nil {
					t.Fatal(err)
				}
				live[k] = i
				sets++
			case 2:
				if v, ok := m.Get(k); ok && v != live[k] {
					t.Fatalf("Get(%d) = %d, latest Set was %d", k, v, live[k])
				}
			default:
				m.Delete(k)
				if op&1 == 1 {
					now = now.Add(time.Second)
				}
			}
			if n := m.Len(); n > capN {
				t.Fatalf("%d entries in a store of capacity %d", n, capN)
			}
		}
		st := m.Stats()
		if got := int(st.Evicted + st.Expired + st.Deleted + st.Replaced); got != reported {
			t.Fatalf("stats count %d removals, callback saw %d", got, reported)
		}
		if sets-reported != m.Len() {
			t.Fatalf("%d sets, %d removals reported, but %d entries", sets, reported, m.Len())
		}
	})
}
