package shard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeKinds builds fresh stores of each implementation.
var storeKinds = []struct {
	name string
	new  func(t *testing.T) func(shard string) Store
}{
	{"mem", func(t *testing.T) func(string) Store {
		return func(string) Store { return &MemStore{} }
	}},
}

// migrationSetup loads n keys through a router over the first shards of
// nodes and returns the old and new placements and the stores.
func migrationSetup(t *testing.T, newStore func(string) Store, oldN, newN, keys int) (from, to Placement, stores map[string]Store) {
	t.Helper()
	nodes := makeNodes(newN)
	old, err := NewRing(nodes[:oldN], RingOptions{})
	require.NoError(t, err)
	next, err := NewRing(nodes, RingOptions{})
	require.NoError(t, err)
	stores = map[string]Store{}
	for _, n := range nodes {
		stores[n.Name] = newStore(n.Name)
	}
	r, err := NewRouter(old, stores, RouterOptions{})
	require.NoError(t, err)
	fill(t, r.Put, keys)
	return old, next, stores
}

func TestMigration_BadInput(t *testing.T) {
	from, to, stores := migrationSetup(t, func(string) Store { return &MemStore{} }, 2, 3, 0)
	_, err := NewMigration(from, to, stores, MigrationOptions{BatchSize: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	delete(stores, "shard-002")
	_, err = NewMigration(from, to, stores, MigrationOptions{})
	assert.ErrorIs(t, err, ErrUnknownShard)
	_, err = NewMigration(nil, to, stores, MigrationOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestMigration_OutOfOrderSteps(t *testing.T) {
	from, to, stores := migrationSetup(t, func(string) Store { return &MemStore{} }, 2, 3, 10)
	m, err := NewMigration(from, to, stores, MigrationOptions{})
	require.NoError(t, err)
	assert.ErrorIs(t, m.Switch(), ErrMigrationState, "switch before verify")
	_, err = m.Router(RouterOptions{})
	assert.ErrorIs(t, err, ErrMigrationState)
	_, err = m.Cleanup(context.Background())
	assert.ErrorIs(t, err, ErrMigrationState)
	rep, err := m.Verify(context.Background())
	require.NoError(t, err)
	assert.Positive(t, rep.Missing, "nothing copied yet")
	assert.Equal(t, PhaseCopying, m.Phase())
}

// The whole move, 3 → 4 shards, with a writer and a reader running during
// it: no write is lost, every key is readable throughout, and after the
// switch each key lives only on its new shard.
func TestMigration_OnlineWithConcurrentWriter(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			const n = 600
			from, to, stores := migrationSetup(t, kind.new(t), 3, 4, n)
			m, err := NewMigration(from, to, stores, MigrationOptions{BatchSize: 37})
			require.NoError(t, err)
			ctx := context.Background()

			// want is what every key must read as at the end.
			want := map[string]string{}
			for i := range n {
				want[fmt.Sprintf("k%05d", i)] = fmt.Sprint(i)
			}
			var wmu sync.Mutex
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { // writer: overwrite, delete and add keys while copying
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					k := fmt.Sprintf("k%05d", (i*7)%(n+100))
					wmu.Lock()
					if i%5 == 0 {
						assert.NoError(t, m.Delete(ctx, k))
						delete(want, k)
					} else {
						v := fmt.Sprintf("w%d", i)
						assert.NoError(t, m.Put(ctx, k, []byte(v)))
						want[k] = v
					}
					wmu.Unlock()
				}
			})
			wg.Go(func() { // reader: every original key not yet touched stays readable
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					k := fmt.Sprintf("k%05d", (i*13)%n)
					wmu.Lock()
					v, present := want[k]
					got, err := m.Get(ctx, k)
					wmu.Unlock()
					if present {
						assert.NoError(t, err, k)
						assert.Equal(t, v, string(got), k)
					} else {
						assert.ErrorIs(t, err, ErrNotFound, k)
					}
				}
			})
			require.NoError(t, m.Copy(ctx))
			close(done)
			wg.Wait()

			rep, err := m.Verify(ctx)
			require.NoError(t, err)
			assert.Zero(t, rep.Missing, "%v", rep.MissingKeys)
			assert.Positive(t, rep.Checked)
			require.NoError(t, m.Switch())
			_, err = m.Cleanup(ctx)
			require.NoError(t, err)

			r, err := m.Router(RouterOptions{})
			require.NoError(t, err)
			for _, k := range slices.Sorted(maps.Keys(want)) {
				v, err := r.Get(ctx, k)
				require.NoError(t, err, "lost write to %s", k)
				assert.Equal(t, want[k], string(v), k)
			}
			total, err := r.Count(ctx, "", "")
			require.NoError(t, err)
			assert.Equal(t, len(want), total, "no deleted key came back, no key left twice")
			st := m.Stats()
			assert.Equal(t, PhaseSwitched, st.Phase)
			assert.Positive(t, st.Copied)
		})
	}
}

// Cancelled mid-copy: every key is still readable, and a new migration
// with the same checkpoint resumes without starting over.
func TestMigration_CancelAndResume(t *testing.T) {
	const n = 500
	from, to, stores := migrationSetup(t, func(string) Store { return &MemStore{} }, 4, 5, n)
	cp := &MemCheckpoint{}
	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	m1, err := NewMigration(from, to, stores, MigrationOptions{BatchSize: 20, Checkpoint: cp, OnBatch: func(BatchEvent) {
		if batches++; batches == 3 {
			cancel()
		}
	}})
	require.NoError(t, err)
	assert.ErrorIs(t, m1.Copy(ctx), context.Canceled)
	first := m1.Stats()
	assert.Equal(t, uint64(3), first.Batches)

	m2, err := NewMigration(from, to, stores, MigrationOptions{BatchSize: 20, Checkpoint: cp})
	require.NoError(t, err)
	for i := range n {
		k := fmt.Sprintf("k%05d", i)
		v, err := m2.Get(context.Background(), k)
		require.NoError(t, err, "key %s unreadable after a cancelled copy", k)
		assert.Equal(t, fmt.Sprint(i), string(v))
	}
	require.NoError(t, m2.Copy(context.Background()))
	assert.Equal(t, uint64(n), first.Read+m2.Stats().Read, "the second run read only what the first had not")
	rep, err := m2.Verify(context.Background())
	require.NoError(t, err)
	assert.Zero(t, rep.Missing)

	plan, err := PlanMoves(from, to, func(yield func(string) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("k%05d", i)) {
				return
			}
		}
	}, PlanOptions{CountOnly: true})
	require.NoError(t, err)
	assert.Equal(t, uint64(plan.Moved), first.Copied+m2.Stats().Copied, "each moving key copied exactly once")
	require.NoError(t, m2.Switch())
	deleted, err := m2.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, plan.Moved, deleted)
}

// A stale copy an earlier migration left on a shard that does not own the
// key is never copied over the owner's value, and Cleanup removes it.
func TestMigration_IgnoresStaleCopies(t *testing.T) {
	from, to, stores := migrationSetup(t, func(string) Store { return &MemStore{} }, 3, 4, 0)
	ctx := context.Background()
	// A key owned by the last source shard that moves to the new shard, so
	// the stale copies on the earlier shards are scanned first.
	var key string
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		if from.Nodes()[from.Locate(k)].Name == "shard-002" && to.Nodes()[to.Locate(k)].Name == "shard-003" {
			key = k
		}
	}
	require.NoError(t, stores["shard-002"].Put(ctx, key, []byte("current")))
	require.NoError(t, stores["shard-000"].Put(ctx, key, []byte("stale")))
	require.NoError(t, stores["shard-001"].Put(ctx, key, []byte("stale")))

	m, err := NewMigration(from, to, stores, MigrationOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Copy(ctx))
	v, err := stores["shard-003"].Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "current", string(v))
	rep, err := m.Verify(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Checked)
	require.NoError(t, m.Switch())
	deleted, err := m.Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, deleted, "the moved key's old copy and both stale copies")
	for _, name := range []string{"shard-000", "shard-001", "shard-002"} {
		assert.Zero(t, stores[name].(*MemStore).Len(), name)
	}
}

// Shrinking 4 → 3 shards sends the removed shard's keys to every remaining
// shard, the first one included: before Copy, Verify names each of them
// missing; Copy reads in the caller's batch size and copies exactly them;
// after it Verify is clean, and Cleanup removes exactly the old copies.
func TestMigration_ShrinkMovesKeysToEveryShard(t *testing.T) {
	ctx := context.Background()
	nodes := makeNodes(4)
	from, err := NewRing(nodes, RingOptions{})
	require.NoError(t, err)
	to, err := NewRing(nodes[:3], RingOptions{})
	require.NoError(t, err)
	stores := map[string]Store{}
	for _, n := range nodes {
		stores[n.Name] = &MemStore{}
	}
	r, err := NewRouter(from, stores, RouterOptions{})
	require.NoError(t, err)
	const total = 600
	fill(t, r.Put, total)

	var moving []string // in key order, as Verify walks the source shard
	targets := make([]int, 3)
	for i := range total {
		k := fmt.Sprintf("k%05d", i)
		if from.Locate(k) == 3 {
			moving = append(moving, k)
			targets[to.Locate(k)]++
		}
	}
	for i, n := range targets {
		require.Positive(t, n, "keys move to shard %d", i)
	}
	require.Greater(t, len(moving), 100)

	const batch = 7
	var events []BatchEvent
	m, err := NewMigration(from, to, stores, MigrationOptions{BatchSize: batch, OnBatch: func(e BatchEvent) { events = append(events, e) }})
	require.NoError(t, err)
	rep, err := m.Verify(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(moving), rep.Checked)
	assert.Equal(t, len(moving), rep.Missing)
	assert.Equal(t, moving[:100], rep.MissingKeys, "the first 100 missing keys, by name")
	assert.Equal(t, PhaseCopying, m.Phase())

	require.NoError(t, m.Copy(ctx))
	st := m.Stats()
	assert.Equal(t, uint64(total), st.Read)
	assert.Equal(t, uint64(len(moving)), st.Copied)
	copied := 0
	for i, e := range events {
		copied += e.Copied
		last := i == len(events)-1 || events[i+1].Shard != e.Shard
		if !last {
			assert.Equal(t, batch, e.Read, "batch %d of %s", i, e.Shard)
		} else {
			assert.LessOrEqual(t, e.Read, batch)
		}
	}
	assert.Equal(t, len(moving), copied)
	assert.Equal(t, uint64(len(events)), st.Batches)

	rep, err = m.Verify(ctx)
	require.NoError(t, err)
	assert.Equal(t, VerifyReport{Checked: len(moving)}, rep)
	require.NoError(t, m.Switch())
	deleted, err := m.Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(moving), deleted)
	assert.Zero(t, stores["shard-003"].(*MemStore).Len())
	nr, err := m.Router(RouterOptions{})
	require.NoError(t, err)
	for i := range total {
		v, err := nr.Get(ctx, fmt.Sprintf("k%05d", i))
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), string(v))
	}
}

// Delete during the copy removes a moving key from its old shard too, so
// neither the double-read nor a later Copy brings it back, whether it was
// copied yet or not; a key that stays is deleted where it is.
func TestMigration_DeleteDuringCopy(t *testing.T) {
	ctx := context.Background()
	from, to, stores := migrationSetup(t, func(string) Store { return &MemStore{} }, 3, 4, 400)
	var moving []string
	stays := ""
	for i := range 400 {
		k := fmt.Sprintf("k%05d", i)
		if from.Nodes()[from.Locate(k)].Name != to.Nodes()[to.Locate(k)].Name {
			moving = append(moving, k)
		} else if stays == "" {
			stays = k
		}
	}
	require.GreaterOrEqual(t, len(moving), 2)
	require.NotEmpty(t, stays)
	m, err := NewMigration(from, to, stores, MigrationOptions{})
	require.NoError(t, err)
	gone := func(k string) {
		t.Helper()
		_, err := m.Get(ctx, k)
		assert.ErrorIs(t, err, ErrNotFound, k)
		for name, s := range stores {
			_, err := s.Get(ctx, k)
			assert.ErrorIs(t, err, ErrNotFound, "%s on %s", k, name)
		}
	}

	notCopied, copied := moving[0], moving[1]
	require.NoError(t, m.Delete(ctx, notCopied))
	gone(notCopied)
	require.NoError(t, m.Copy(ctx))
	gone(notCopied)
	v, err := m.Get(ctx, copied)
	require.NoError(t, err)
	require.NoError(t, m.Delete(ctx, copied))
	gone(copied)
	require.NoError(t, m.Delete(ctx, stays))
	gone(stays)
	assert.NotEmpty(t, v)

	rep, err := m.Verify(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(moving)-2, rep.Checked)
	assert.Zero(t, rep.Missing)
}
