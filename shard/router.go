package shard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RouterOptions configure [NewRouter]. The zero value is ready to use.
type RouterOptions struct {
	// QueryTimeout bounds every cross-shard query ([Router.Scan],
	// [Router.TopN], [Router.Count], [Scatter]) on top of the caller's
	// context. Zero means only the caller's deadline applies; negative is
	// an error.
	QueryTimeout time.Duration
	// OnShardError, if set, is called (on the calling goroutine, never
	// under a lock) for every failed shard call.
	OnShardError func(shard string, err error)
	// ShardKey maps a key to the part of it that is placed, so related
	// keys share a shard (see [HashTag]). It must be fast and must not
	// allocate if lookups are to stay allocation-free. Nil means the whole
	// key.
	ShardKey func(key string) string
}

// Router is horizontal sharding over N stores: it sends each single-key
// operation to the one shard a [Placement] names, and runs cross-shard
// queries as scatter-gather — every shard in parallel under one deadline,
// results merged in order. A query where some shards failed returns what
// the others gave together with a [*PartialError] naming the failed shards,
// never a silently incomplete result.
//
// The guide's cross-shard challenges show here: a query touching every
// shard is as slow as the slowest shard (the lab's cross-shard experiment
// measures the tail), and distributed joins are left to the caller through
// [Scatter].
//
// A Router is safe for concurrent use.
type Router struct {
	placement Placement
	nodes     []Node
	stores    []Store
	opts      RouterOptions

	gets, puts, deletes, queries, partial, shardErrors atomic.Uint64
}

// NewRouter returns a router over placement, with stores naming every
// shard of the placement ([ErrUnknownShard] when one is missing). Stores
// for other names are ignored.
func NewRouter(placement Placement, stores map[string]Store, opts RouterOptions) (*Router, error) {
	if placement == nil {
		return nil, fmt.Errorf("%w: nil placement", ErrInvalidConfig)
	}
	if opts.QueryTimeout < 0 {
		return nil, fmt.Errorf("%w: RouterOptions.QueryTimeout is %v (want ≥ 0)", ErrInvalidConfig, opts.QueryTimeout)
	}
	r := &Router{placement: placement, nodes: placement.Nodes(), opts: opts}
	for _, n := range r.nodes {
		s := stores[n.Name]
		if s == nil {
			return nil, fmt.Errorf("%w: no store for shard %q", ErrUnknownShard, n.Name)
		}
		r.stores = append(r.stores, s)
	}
	return r, nil
}

// Placement returns the router's placement.
func (r *Router) Placement() Placement { return r.placement }

// ShardFor returns the name of the shard that owns key, or an error
// wrapping [ErrNoShardForKey].
func (r *Router) ShardFor(key string) (string, error) {
	i, err := r.locate(key)
	if err != nil {
		return "", err
	}
	return r.nodes[i].Name, nil
}

func (r *Router) locate(key string) (int, error) {
	if r == nil || r.placement == nil {
		return -1, errNotMade("Router", "NewRouter")
	}
	i := r.owner(key)
	if i < 0 || i >= len(r.stores) {
		return -1, fmt.Errorf("%w: key %q", ErrNoShardForKey, key)
	}
	return i, nil
}

// owner is the placement of key's shard key, or -1.
func (r *Router) owner(key string) int {
	if r.opts.ShardKey != nil {
		key = r.opts.ShardKey(key)
	}
	return r.placement.Locate(key)
}

// Get reads key from its shard.
func (r *Router) Get(ctx context.Context, key string) ([]byte, error) {
	r.gets.Add(1)
	i, err := r.locate(key)
	if err != nil {
		return nil, err
	}
	v, err := r.stores[i].Get(ctx, key)
	return v, r.shardErr(i, err)
}

// Put writes key to its shard.
func (r *Router) Put(ctx context.Context, key string, value []byte) error {
	r.puts.Add(1)
	i, err := r.locate(key)
	if err != nil {
		return err
	}
	return r.shardErr(i, r.stores[i].Put(ctx, key, value))
}

// Delete removes key from its shard.
func (r *Router) Delete(ctx context.Context, key string) error {
	r.deletes.Add(1)
	i, err := r.locate(key)
	if err != nil {
		return err
	}
	return r.shardErr(i, r.stores[i].Delete(ctx, key))
}

// shardErr counts and reports a failed shard call; a missing key is not a
// failure.
func (r *Router) shardErr(i int, err error) error {
	if err != nil && !errors.Is(err, ErrNotFound) {
		r.shardErrors.Add(1)
		if r.opts.OnShardError != nil {
			r.opts.OnShardError(r.nodes[i].Name, err)
		}
	}
	return err
}

// PartialError reports a cross-shard query that some shards failed: the
// result returned beside it covers only the other shards. It wraps
// [ErrPartialResult] and every shard's error.
type PartialError struct {
	// Failed maps each failed shard's name to its error.
	Failed map[string]error
	// Shards is the number of shards queried.
	Shards int
}

// Error lists the failed shards in name order.
func (e *PartialError) Error() string {
	names := make([]string, 0, len(e.Failed))
	for n := range e.Failed {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d of %d shards failed:", ErrPartialResult, len(names), e.Shards)
	for _, n := range names {
		fmt.Fprintf(&b, " %s (%v);", n, e.Failed[n])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns [ErrPartialResult] and the shards' errors, so errors.Is
// finds context.DeadlineExceeded when a shard timed out.
func (e *PartialError) Unwrap() []error {
	errs := []error{ErrPartialResult}
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return errs
}

// Scatter runs q on every shard of r in parallel under r's query deadline
// and returns the results of the shards that succeeded, in shard order,
// with their names. When any shard fails the error is a [*PartialError];
// the results of the others are still returned. Scatter returns after
// every call to q has returned.
//
// q sees the whole store: unlike the router's own queries, it must itself
// skip keys the shard does not own (with [Router.ShardFor]) if stale
// copies may exist.
func Scatter[T any](ctx context.Context, r *Router, q func(ctx context.Context, shard string, s Store) (T, error)) ([]T, []string, error) {
	if r == nil || q == nil {
		// q runs on goroutines of its own, where a nil function would
		// crash the process rather than fail the call.
		return nil, nil, fmt.Errorf("%w: Scatter needs a router and a query (router nil: %t, query nil: %t)", ErrInvalidConfig, r == nil, q == nil)
	}
	return scatter(ctx, r, nil, func(ctx context.Context, i int, s Store) (T, error) { return q(ctx, r.nodes[i].Name, s) })
}

// scatter runs q on the shards in targets (nil: all) in parallel.
func scatter[T any](ctx context.Context, r *Router, targets []int, q func(ctx context.Context, i int, s Store) (T, error)) ([]T, []string, error) {
	if r.placement == nil {
		return nil, nil, errNotMade("Router", "NewRouter")
	}
	r.queries.Add(1)
	if targets == nil {
		targets = make([]int, len(r.stores))
		for i := range targets {
			targets[i] = i
		}
	}
	if r.opts.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.QueryTimeout)
		defer cancel()
	}
	results := make([]T, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for t, i := range targets {
		wg.Go(func() { results[t], errs[t] = q(ctx, i, r.stores[i]) })
	}
	wg.Wait()
	var ok []T
	var names []string
	var pe *PartialError
	for t, err := range errs {
		i := targets[t]
		if err != nil {
			if pe == nil {
				pe = &PartialError{Failed: map[string]error{}, Shards: len(targets)}
			}
			pe.Failed[r.nodes[i].Name] = err
			_ = r.shardErr(i, err)
			continue
		}
		ok = append(ok, results[t])
		names = append(names, r.nodes[i].Name)
	}
	if pe != nil {
		r.partial.Add(1)
		return ok, names, pe
	}
	return ok, names, nil
}

// Scan is an ordered cross-shard range scan: the first limit keys k with
// start ≤ k < end over all shards, in key order (limit ≤ 0: all; end ""
// means no upper bound). Each shard returns at most limit keys and the
// sorted lists are merged. On partial failure it returns the merge of the
// shards that answered and a [*PartialError].
//
// Like every query of the router, it returns from each shard only the keys
// the placement assigns to that shard, so copies a [Migration] has not yet
// cleaned up are neither returned twice nor counted twice.
func (r *Router) Scan(ctx context.Context, start, end string, limit int) ([]KV, error) {
	parts, _, err := scatterRange(ctx, r, start, end, func(ctx context.Context, i int, s Store) ([]KV, error) {
		var out []KV
		err := r.walkOwned(ctx, i, s, start, end, limit, func(page []KV) bool {
			out = append(out, page...)
			return limit <= 0 || len(out) < limit
		})
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
		return out, err
	})
	return mergeTop(parts, limit, func(a, b KV) int { return strings.Compare(a.Key, b.Key) }), err
}

// scanPage is how many keys a full-shard walk reads per call.
const scanPage = 1000

// TopN returns the n entries in [start, end) that sort first by order
// (for example, the largest values first), over all shards: each shard
// walks its range and keeps its own top n, and the shard lists are merged.
// Ties are broken by key, so the result is deterministic. Partial failure
// returns the merge of the shards that answered and a [*PartialError].
func (r *Router) TopN(ctx context.Context, start, end string, n int, order func(a, b KV) int) ([]KV, error) {
	if n <= 0 || order == nil {
		return nil, fmt.Errorf("%w: TopN needs n > 0 (got %d) and an order", ErrInvalidConfig, n)
	}
	total := func(a, b KV) int {
		if c := order(a, b); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	}
	parts, _, err := scatterRange(ctx, r, start, end, func(ctx context.Context, i int, s Store) ([]KV, error) {
		top := make([]KV, 0, min(n, scanPage))
		err := r.walkOwned(ctx, i, s, start, end, 0, func(page []KV) bool {
			for _, kv := range page {
				top = insertTop(top, kv, n, total)
			}
			return true
		})
		return top, err
	})
	return mergeTop(parts, n, total), err
}

// Count returns the number of keys in [start, end) over all shards: an
// aggregate. On partial failure it returns the count of the shards that
// answered and a [*PartialError].
func (r *Router) Count(ctx context.Context, start, end string) (int, error) {
	parts, _, err := scatterRange(ctx, r, start, end, func(ctx context.Context, i int, s Store) (int, error) {
		c := 0
		err := r.walkOwned(ctx, i, s, start, end, 0, func(page []KV) bool { c += len(page); return true })
		return c, err
	})
	sum := 0
	for _, c := range parts {
		sum += c
	}
	return sum, err
}

// walk calls fn with every page of s in [start, end), pages of size
// pageSize (≤ 0: scanPage), until fn returns false.
func walk(ctx context.Context, s Store, start, end string, pageSize int, fn func([]KV) bool) error {
	if pageSize <= 0 {
		pageSize = scanPage
	}
	for {
		page, err := s.Scan(ctx, start, end, pageSize)
		if err != nil {
			return err
		}
		if err := checkScanProgress(page, start); err != nil {
			return err
		}
		if len(page) > 0 && !fn(page) {
			return nil
		}
		if len(page) < pageSize {
			return nil
		}
		start = page[len(page)-1].Key + "\x00"
	}
}

// checkScanProgress returns an error wrapping [ErrStoreScan] when the last
// key of a page lies before the start it was asked from: the next page
// would start no later than this one, and paging would never end.
func checkScanProgress(page []KV, start string) error {
	if len(page) == 0 {
		return nil
	}
	if last := page[len(page)-1].Key; last < start {
		return fmt.Errorf("%w: Scan from %q returned %q", ErrStoreScan, start, last)
	}
	return nil
}

// walkOwned is walk over shard i that passes fn only the keys the
// placement assigns to shard i.
func (r *Router) walkOwned(ctx context.Context, i int, s Store, start, end string, pageSize int, fn func([]KV) bool) error {
	return walk(ctx, s, start, end, pageSize, func(page []KV) bool {
		owned := page[:0:0]
		for _, kv := range page {
			if r.owner(kv.Key) == i {
				owned = append(owned, kv)
			}
		}
		if len(owned) == 0 {
			return true
		}
		return fn(owned)
	})
}

// scatterRange runs q on the shards that may hold keys in [start, end):
// with a [Range] placement (and no ShardKey) only the shards whose ranges
// overlap it — the guide's "efficient range queries" — otherwise all.
func scatterRange[T any](ctx context.Context, r *Router, start, end string, q func(ctx context.Context, i int, s Store) (T, error)) ([]T, []string, error) {
	var targets []int
	if rp, ok := r.placement.(*Range); ok && r.opts.ShardKey == nil {
		targets = rp.ShardsFor(start, end)
		if len(targets) == 0 {
			return nil, nil, nil
		}
	}
	return scatter(ctx, r, targets, q)
}

// insertTop inserts kv into top, kept sorted by order and at most n long;
// most keys of a large walk fail the first comparison with the current
// n-th and cost nothing more.
func insertTop(top []KV, kv KV, n int, order func(a, b KV) int) []KV {
	if len(top) == n && order(kv, top[n-1]) >= 0 {
		return top
	}
	at, _ := slices.BinarySearchFunc(top, kv, order)
	if len(top) < n {
		top = append(top, KV{})
	}
	copy(top[at+1:], top[at:len(top)-1])
	top[at] = kv
	return top
}

// mergeTop merges lists each sorted by order and returns the first limit
// entries (limit ≤ 0: all).
func mergeTop(parts [][]KV, limit int, order func(a, b KV) int) []KV {
	pos := make([]int, len(parts))
	var out []KV
	for limit <= 0 || len(out) < limit {
		best := -1
		for i, p := range parts {
			if pos[i] < len(p) && (best < 0 || order(p[pos[i]], parts[best][pos[best]]) < 0) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, parts[best][pos[best]])
		pos[best]++
	}
	return out
}

// RouterStats is a snapshot of a [Router]'s counters.
type RouterStats struct {
	Gets, Puts, Deletes uint64
	// Queries counts cross-shard queries; PartialResults those where some
	// shard failed.
	Queries, PartialResults uint64
	// ShardErrors counts failed shard calls (a missing key is not one).
	ShardErrors uint64
}

// Stats returns the router's counters.
func (r *Router) Stats() RouterStats {
	return RouterStats{
		Gets: r.gets.Load(), Puts: r.puts.Load(), Deletes: r.deletes.Load(),
		Queries: r.queries.Load(), PartialResults: r.partial.Load(), ShardErrors: r.shardErrors.Load(),
	}
}

// Vertical is vertical sharding: each table or entity lives on its own
// set of shards ("users" on one cluster, "orders" on another), each with its
// own [Router] and placement. Pros (the guide's): each table is tuned for
// its access pattern and isolated for security. Cons: joins across tables
// become application code (use [Scatter] on both) and transactions across
// them lose ACID guarantees.
//
// A Vertical is immutable and safe for concurrent use.
type Vertical struct {
	tables map[string]*Router
}

// ErrUnknownTable reports a table that a [Vertical] does not route.
var ErrUnknownTable = errors.New("shard: unknown table")

// NewVertical returns a vertical split over tables (name → router).
func NewVertical(tables map[string]*Router) (*Vertical, error) {
	if len(tables) == 0 {
		return nil, fmt.Errorf("%w: no tables", ErrInvalidConfig)
	}
	for name, r := range tables {
		if name == "" || r == nil {
			return nil, fmt.Errorf("%w: table %q has no router", ErrInvalidConfig, name)
		}
	}
	v := &Vertical{tables: make(map[string]*Router, len(tables))}
	for n, r := range tables {
		v.tables[n] = r
	}
	return v, nil
}

// Table returns the router of table, or an error wrapping
// [ErrUnknownTable].
func (v *Vertical) Table(name string) (*Router, error) {
	r, ok := v.tables[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTable, name)
	}
	return r, nil
}

// Tables returns the table names, sorted.
func (v *Vertical) Tables() []string {
	names := make([]string, 0, len(v.tables))
	for n := range v.tables {
		names = append(names, n)
	}
	slices.SortFunc(names, cmp.Compare)
	return names
}
