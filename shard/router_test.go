package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newTestRouter returns a router over n shards of one store kind, with the
// stores by name.
func newTestRouter(t *testing.T, newStore func(string) Store, p Placement, opts RouterOptions) (*Router, map[string]Store) {
	t.Helper()
	stores := map[string]Store{}
	for _, n := range p.Nodes() {
		stores[n.Name] = newStore(n.Name)
	}
	r, err := NewRouter(p, stores, opts)
	require.NoError(t, err)
	return r, stores
}

func keysOf(kvs []KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

// fill puts n keys through put.
func fill(t *testing.T, put func(ctx context.Context, k string, v []byte) error, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, put(context.Background(), fmt.Sprintf("k%05d", i), []byte(fmt.Sprint(i))))
	}
}

func TestRouter_BadInput(t *testing.T) {
	ring, err := NewRing(abc, RingOptions{})
	require.NoError(t, err)
	_, err = NewRouter(ring, map[string]Store{"a": &MemStore{}, "b": &MemStore{}}, RouterOptions{})
	assert.ErrorIs(t, err, ErrUnknownShard)
	assert.ErrorContains(t, err, `"c"`)
	_, err = NewRouter(nil, nil, RouterOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewRouter(ring, nil, RouterOptions{QueryTimeout: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)

	rng, err := NewRange(abc, []Span{{Start: "m", Shard: "a"}})
	require.NoError(t, err)
	r, _ := newTestRouter(t, func(string) Store { return &MemStore{} }, rng, RouterOptions{})
	assert.ErrorIs(t, r.Put(context.Background(), "a-key-below-every-range", nil), ErrNoShardForKey)
	_, err = r.Get(context.Background(), "b")
	assert.ErrorIs(t, err, ErrNoShardForKey)
	_, err = r.TopN(context.Background(), "", "", 0, nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// A failed shard is named, and the other shards' results still come back.
func TestRouter_PartialFailureIsExplicit(t *testing.T) {
	ring, err := NewRing(makeNodes(4), RingOptions{})
	require.NoError(t, err)
	var mu sync.Mutex
	var reported []string
	r, stores := newTestRouter(t, func(string) Store { return &MemStore{} }, ring, RouterOptions{
		OnShardError: func(shard string, err error) { mu.Lock(); reported = append(reported, shard); mu.Unlock() },
	})
	fill(t, r.Put, 100)
	broken := stores["shard-002"].(*MemStore)
	lost, err := broken.Scan(context.Background(), "", "", 0)
	require.NoError(t, err)
	require.NotEmpty(t, lost)
	boom := errors.New("disk on fire")
	broken.SetFault(boom)

	got, err := r.Scan(context.Background(), "", "", 0)
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, ErrPartialResult)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, map[string]error{"shard-002": boom}, pe.Failed)
	assert.Equal(t, 4, pe.Shards)
	assert.Contains(t, err.Error(), "1 of 4 shards failed: shard-002 (disk on fire)")
	assert.Len(t, got, 100-len(lost), "the other shards' keys are returned")
	assert.Equal(t, []string{"shard-002"}, reported)
	assert.Equal(t, uint64(1), r.Stats().PartialResults)

	n, err := r.Count(context.Background(), "", "")
	assert.ErrorIs(t, err, ErrPartialResult)
	assert.Equal(t, 100-len(lost), n)
}

// A slow shard is cut off at the query deadline, in virtual time.
func TestRouter_QueryDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ring, err := NewRing(makeNodes(8), RingOptions{})
		require.NoError(t, err)
		r, stores := newTestRouter(t, func(string) Store { return &MemStore{} }, ring, RouterOptions{QueryTimeout: 50 * time.Millisecond})
		fill(t, r.Put, 50)
		stores["shard-005"].(*MemStore).SetDelay(time.Second)
		start := time.Now()
		_, err = r.Scan(context.Background(), "", "", 0)
		assert.Equal(t, 50*time.Millisecond, time.Since(start), "the query ends at its deadline, not when the slow shard answers")
		var pe *PartialError
		require.ErrorAs(t, err, &pe)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Len(t, pe.Failed, 1)
		assert.Contains(t, pe.Failed, "shard-005")
	})
}

func TestVertical(t *testing.T) {
	users, _ := newTestRouter(t, func(string) Store { return &MemStore{} }, mustRing(t, 2), RouterOptions{})
	orders, _ := newTestRouter(t, func(string) Store { return &MemStore{} }, mustRing(t, 4), RouterOptions{})
	v, err := NewVertical(map[string]*Router{"users": users, "orders": orders})
	require.NoError(t, err)
	assert.Equal(t, []string{"orders", "users"}, v.Tables())
	r, err := v.Table("orders")
	require.NoError(t, err)
	require.NoError(t, r.Put(context.Background(), "o1", []byte("x")))
	_, err = users.Get(context.Background(), "o1")
	assert.ErrorIs(t, err, ErrNotFound, "tables are separate")
	_, err = v.Table("payments")
	assert.ErrorIs(t, err, ErrUnknownTable)
	_, err = NewVertical(nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewVertical(map[string]*Router{"x": nil})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func mustRing(t *testing.T, n int) *Ring {
	t.Helper()
	r, err := NewRing(makeNodes(n), RingOptions{})
	require.NoError(t, err)
	return r
}

// A key left on a shard that no longer owns it (a migration not yet
// cleaned up) is neither returned nor counted twice.
func TestRouter_QueriesSkipKeysTheShardDoesNotOwn(t *testing.T) {
	ring := mustRing(t, 3)
	r, stores := newTestRouter(t, func(string) Store { return &MemStore{} }, ring, RouterOptions{})
	ctx := context.Background()
	fill(t, r.Put, 30)
	owner, err := r.ShardFor("k00007")
	require.NoError(t, err)
	for name, s := range stores {
		if name != owner {
			require.NoError(t, s.Put(ctx, "k00007", []byte("stale")))
		}
	}
	got, err := r.Scan(ctx, "k00005", "k00010", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00005", "k00006", "k00007", "k00008", "k00009"}, keysOf(got))
	assert.Equal(t, "7", string(got[2].Value), "the owner's value, not the stale copy")

	lim, err := r.Scan(ctx, "k00007", "", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00007", "k00008"}, keysOf(lim))

	n, err := r.Count(ctx, "", "")
	require.NoError(t, err)
	assert.Equal(t, 30, n)

	top, err := r.TopN(ctx, "", "", 40, func(a, b KV) int { return strings.Compare(string(b.Value), string(a.Value)) })
	require.NoError(t, err)
	assert.Len(t, top, 30)
	for _, kv := range top {
		assert.NotEqual(t, "stale", string(kv.Value))
	}
}

// With range placement a range scan asks only the shards whose ranges
// overlap it; the others are not called (here they would fail).
func TestRouter_RangeScanTouchesOnlyOverlappingShards(t *testing.T) {
	rng, err := NewRangeSplits(abc, []string{"h", "p"})
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, rng.ShardsFor("c", "k"))
	assert.Equal(t, []int{2}, rng.ShardsFor("q", ""))
	assert.Equal(t, []int{0, 1, 2}, rng.ShardsFor("", ""))
	assert.Equal(t, []int{1}, rng.ShardsFor("h", "p"), "end is exclusive")

	r, stores := newTestRouter(t, func(string) Store { return &MemStore{} }, rng, RouterOptions{})
	ctx := context.Background()
	for _, k := range []string{"apple", "banana", "kiwi", "lemon", "quince", "zucchini"} {
		require.NoError(t, r.Put(ctx, k, []byte(k)))
	}
	stores["c"].(*MemStore).SetFault(errors.New("shard c is down"))
	got, err := r.Scan(ctx, "b", "m", 0)
	require.NoError(t, err, "shard c holds nothing in [b, m) and is not asked")
	assert.Equal(t, []string{"banana", "kiwi", "lemon"}, keysOf(got))
	n, err := r.Count(ctx, "a", "h")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, err = r.Count(ctx, "", "")
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 3, pe.Shards)
}

// TopN agrees with sorting everything, for every n.
func TestRouter_TopNMatchesFullSort(t *testing.T) {
	r, _ := newTestRouter(t, func(string) Store { return &MemStore{} }, mustRing(t, 5), RouterOptions{})
	ctx := context.Background()
	var all []KV
	for i := range 300 {
		kv := KV{Key: fmt.Sprintf("k%03d", i), Value: []byte(strconv.Itoa(i * 7919 % 101))}
		all = append(all, kv)
		require.NoError(t, r.Put(ctx, kv.Key, kv.Value))
	}
	order := func(a, b KV) int {
		x, _ := strconv.Atoi(string(a.Value))
		y, _ := strconv.Atoi(string(b.Value))
		return y - x
	}
	want := slices.Clone(all)
	slices.SortStableFunc(want, func(a, b KV) int {
		if c := order(a, b); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	for _, n := range []int{1, 2, 10, 299, 300, 500} {
		got, err := r.TopN(ctx, "", "", n, order)
		require.NoError(t, err)
		assert.Equal(t, keysOf(want[:min(n, len(want))]), keysOf(got), "n=%d", n)
	}
}

// startBlind is a broken Store whose Scan ignores its start, so every page
// is the first one.
type startBlind struct{ MemStore }

func (s *startBlind) Scan(ctx context.Context, _, end string, limit int) ([]KV, error) {
	return s.MemStore.Scan(ctx, "", end, limit)
}

// Paging through a store whose Scan ignores its start would never end:
// the router's queries and the migration's copy, verify and cleanup stop
// at once with ErrStoreScan instead of looping until the context ends.
func TestStoreScanThatGoesBackwardsFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	from, err := NewRing(NodesNamed("a"), RingOptions{})
	require.NoError(t, err)
	to, err := NewRing(NodesNamed("a", "b", "c"), RingOptions{})
	require.NoError(t, err)
	blind := &startBlind{}
	stores := map[string]Store{"a": blind, "b": &MemStore{}, "c": &MemStore{}}
	r, err := NewRouter(from, stores, RouterOptions{})
	require.NoError(t, err)
	for i := range scanPage + 1 {
		require.NoError(t, r.Put(ctx, fmt.Sprintf("key-%05d", i), []byte("v")))
	}

	_, err = r.Count(ctx, "", "")
	require.ErrorIs(t, err, ErrStoreScan)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	_, err = r.TopN(ctx, "", "", 1, func(a, b KV) int { return 0 })
	require.ErrorIs(t, err, ErrStoreScan)

	m, err := NewMigration(from, to, stores, MigrationOptions{BatchSize: 10})
	require.NoError(t, err)
	err = m.Copy(ctx)
	require.ErrorIs(t, err, ErrStoreScan)
	assert.ErrorContains(t, err, `"a"`)
	_, err = m.Verify(ctx)
	require.ErrorIs(t, err, ErrStoreScan)
}

// Scatter runs the query on goroutines of its own, where a nil function
// would crash the process: it is refused instead.
func TestScatterNilQuery(t *testing.T) {
	ring, err := NewRing(NodesNamed("a"), RingOptions{})
	require.NoError(t, err)
	r, err := NewRouter(ring, map[string]Store{"a": &MemStore{}}, RouterOptions{})
	require.NoError(t, err)
	_, _, err = Scatter[int](t.Context(), r, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "query nil: true")
	_, _, err = Scatter(t.Context(), nil, func(context.Context, string, Store) (int, error) { return 0, nil })
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// outOfRange is a Placement written by a user that answers an index past
// its shard set.
type outOfRange struct{ Placement }

func (p outOfRange) Locate(string) int { return len(p.Nodes()) }

// A user's Placement that answers an index outside its shard set gets an
// error naming the key, never a panic or another shard's store.
func TestRouter_PlacementOutOfRange(t *testing.T) {
	ring, err := NewRing(abc, RingOptions{})
	require.NoError(t, err)
	r, _ := newTestRouter(t, func(string) Store { return &MemStore{} }, outOfRange{ring}, RouterOptions{})
	require.NotPanics(t, func() {
		err = r.Put(context.Background(), "k", []byte("v"))
	})
	assert.ErrorIs(t, err, ErrNoShardForKey)
	assert.ErrorContains(t, err, `"k"`)
	_, err = r.ShardFor("k")
	assert.ErrorIs(t, err, ErrNoShardForKey)
}

// Scan with no limit walks every page of every shard; a limit returns the
// first keys in order; TopN needs n > 0; Scatter names what is missing.
func TestRouter_ScanLimitsAndArguments(t *testing.T) {
	ring, err := NewRing(abc, RingOptions{})
	require.NoError(t, err)
	r, _ := newTestRouter(t, func(string) Store { return &MemStore{} }, ring, RouterOptions{})
	const n = 3*scanPage + 500 // more than one page on every shard
	fill(t, r.Put, n)
	ctx := context.Background()
	all, err := r.Scan(ctx, "", "", 0)
	require.NoError(t, err)
	require.Len(t, all, n)
	assert.True(t, slices.IsSortedFunc(all, func(a, b KV) int { return strings.Compare(a.Key, b.Key) }))
	first, err := r.Scan(ctx, "", "", 5)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00000", "k00001", "k00002", "k00003", "k00004"}, keysOf(first))

	_, err = r.TopN(ctx, "", "", 0, cmpKV)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "got 0")
	_, _, err = Scatter[int](ctx, r, nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "router nil: false, query nil: true")
}
