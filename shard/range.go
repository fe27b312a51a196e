package shard

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// Span is one range of keys owned by one shard: the keys k with
// Start ≤ k < End in byte order. An empty End means "no upper bound"; an
// empty Start is the smallest key.
type Span struct {
	Start string
	End   string
	Shard string
}

// contains reports whether key is in the span.
func (s Span) contains(key string) bool {
	return key >= s.Start && (s.End == "" || key < s.End)
}

// Range is range-based sharding: sorted, non-overlapping key ranges, each
// owned by a shard, as in Bigtable tablets, HBase regions and Vitess
// key ranges.
//
// Pros (the guide's): efficient range queries, because a scan of adjacent
// keys touches one or two shards; easy to add shards by splitting a range
// ([Range.Split]) and to retire them by merging ([Range.Merge]). Cons:
// uneven distribution and hot spots, above all for time-ordered keys (IDs,
// timestamps), whose writes all land on the last range; [Range.Observe] and
// [Range.Hot] find such ranges. Use it for time-series data, logs and
// history, or wherever range scans dominate.
//
// Ranges may leave gaps; a key in a gap or outside every range has no shard
// (Locate returns -1, [Range.Lookup] returns [ErrNoShardForKey]). A Range's
// layout is immutable (Split and Merge return new ones); it is safe for
// concurrent use, including Observe.
type Range struct {
	set    *nodeSet
	spans  []Span
	owners []int32
	counts []atomic.Uint64
}

// NewRange returns range placement over nodes with the given spans, which
// must be sorted by Start, non-empty (Start < End) and non-overlapping, and
// name shards in nodes ([ErrInvalidRange], [ErrUnknownShard] otherwise).
//
// Ranges, not weights, decide each shard's share of keys, so every weight
// must be 1 ([ErrInvalidWeight] otherwise); give a shard more keys by
// giving it more or wider ranges.
func NewRange(nodes []Node, spans []Span) (*Range, error) {
	set, err := newRangeNodes(nodes)
	if err != nil {
		return nil, err
	}
	return newRange(set, slices.Clone(spans))
}

// newRangeNodes validates the shard set of a Range.
func newRangeNodes(nodes []Node) (*nodeSet, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	if err := set.requireUnweighted("range", "its ranges decide each shard's share"); err != nil {
		return nil, err
	}
	return set, nil
}

// NewRangeSplits returns range placement that covers every key with
// len(nodes) ranges cut at splits: node i owns [splits[i-1], splits[i]).
// The split points must be strictly increasing, non-empty, and one fewer
// than the nodes; every weight must be 1, as for [NewRange].
func NewRangeSplits(nodes []Node, splits []string) (*Range, error) {
	set, err := newRangeNodes(nodes)
	if err != nil {
		return nil, err
	}
	if len(splits) != len(nodes)-1 {
		return nil, fmt.Errorf("%w: %d split points for %d shards (want %d)", ErrInvalidRange, len(splits), len(nodes), len(nodes)-1)
	}
	spans := make([]Span, len(nodes))
	for i, n := range nodes {
		spans[i].Shard = n.Name
		if i > 0 {
			if splits[i-1] == "" {
				return nil, fmt.Errorf("%w: split point %d is empty", ErrInvalidRange, i-1)
			}
			spans[i].Start = splits[i-1]
		}
		if i < len(splits) {
			spans[i].End = splits[i]
		}
	}
	return newRange(set, spans)
}

func newRange(set *nodeSet, spans []Span) (*Range, error) {
	if len(spans) == 0 {
		return nil, fmt.Errorf("%w: no ranges", ErrInvalidRange)
	}
	r := &Range{set: set, spans: spans, owners: make([]int32, len(spans)), counts: make([]atomic.Uint64, len(spans))}
	for i, s := range spans {
		o, ok := set.index[s.Shard]
		if !ok {
			return nil, fmt.Errorf("%w: range %d [%q, %q) names shard %q", ErrUnknownShard, i, s.Start, s.End, s.Shard)
		}
		r.owners[i] = int32(o)
		if s.End != "" && s.End <= s.Start {
			return nil, fmt.Errorf("%w: range %d [%q, %q) is empty or reversed", ErrInvalidRange, i, s.Start, s.End)
		}
		if i == 0 {
			continue
		}
		prev := spans[i-1]
		switch {
		case s.Start <= prev.Start:
			return nil, fmt.Errorf("%w: range %d starts at %q, not after range %d's start %q (ranges must be sorted)", ErrInvalidRange, i, s.Start, i-1, prev.Start)
		case prev.End == "" || s.Start < prev.End:
			return nil, fmt.Errorf("%w: range %d [%q, %q) overlaps range %d [%q, %q)", ErrInvalidRange, i, s.Start, s.End, i-1, prev.Start, prev.End)
		}
	}
	return r, nil
}

// find returns the index of the span containing key, or -1.
func (r *Range) find(key string) int {
	// The last span whose Start ≤ key.
	lo, hi := 0, len(r.spans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.spans[m].Start <= key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || !r.spans[lo-1].contains(key) {
		return -1
	}
	return lo - 1
}

// Locate returns the index in the nodes given to the constructor of the
// shard whose range holds key, or -1 when no range does. It does not
// allocate.
func (r *Range) Locate(key string) int {
	if i := r.find(key); i >= 0 {
		return int(r.owners[i])
	}
	return -1
}

// Lookup is Locate with an error wrapping [ErrNoShardForKey] that names
// the key when no range holds it.
func (r *Range) Lookup(key string) (int, error) {
	if i := r.Locate(key); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("%w: key %q is outside every range", ErrNoShardForKey, key)
}

// Nodes returns a copy of the shard set in the order given to the
// constructor.
func (r *Range) Nodes() []Node { return slices.Clone(r.set.nodes) }

// Spans returns a copy of the ranges, sorted.
func (r *Range) Spans() []Span { return slices.Clone(r.spans) }

// Split returns a new Range in which the range holding at is cut in two:
// [Start, at) stays with its shard and [at, End) goes to shard. at must be
// strictly inside a range ([ErrNoShardForKey] when it is in none,
// [ErrInvalidRange] when it is a range's start). Observations are not
// carried over.
func (r *Range) Split(at, shard string) (*Range, error) {
	i := r.find(at)
	if i < 0 {
		return nil, fmt.Errorf("%w: split point %q is outside every range", ErrNoShardForKey, at)
	}
	if r.spans[i].Start == at {
		return nil, fmt.Errorf("%w: split point %q is already the start of range %d", ErrInvalidRange, at, i)
	}
	left, right := r.spans[i], r.spans[i]
	left.End, right.Start, right.Shard = at, at, shard
	spans := slices.Concat(r.spans[:i], []Span{left, right}, r.spans[i+1:])
	return newRange(r.set, spans)
}

// Merge returns a new Range in which the range starting at at is joined to
// the range before it, which must end exactly at at; the merged range is
// owned by the left range's shard, so the right range's keys move there
// (see [PlanRanges]). Observations are not carried over.
func (r *Range) Merge(at string) (*Range, error) {
	i := slices.IndexFunc(r.spans, func(s Span) bool { return s.Start == at })
	if i <= 0 {
		return nil, fmt.Errorf("%w: no range after another starts at %q", ErrInvalidRange, at)
	}
	if r.spans[i-1].End != at {
		return nil, fmt.Errorf("%w: range [%q, %q) does not touch the range starting at %q", ErrInvalidRange, r.spans[i-1].Start, r.spans[i-1].End, at)
	}
	merged := r.spans[i-1]
	merged.End = r.spans[i].End
	spans := slices.Concat(r.spans[:i-1], []Span{merged}, r.spans[i+1:])
	return newRange(r.set, spans)
}

// ShardsFor returns the indexes, in the nodes given to the constructor and
// in ascending order, of the shards whose ranges overlap the keys k with
// start ≤ k < end (an empty end: no upper bound). A range scan needs only
// these shards.
func (r *Range) ShardsFor(start, end string) []int {
	seen := make([]bool, len(r.set.nodes))
	for i, s := range r.spans {
		if (end == "" || s.Start < end) && (s.End == "" || start < s.End) {
			seen[r.owners[i]] = true
		}
	}
	var out []int
	for i, ok := range seen {
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// Observe locates key like [Range.Locate] and counts one access to its
// range, for [Range.Hot]. It is safe for concurrent use and does not
// allocate.
func (r *Range) Observe(key string) int {
	i := r.find(key)
	if i < 0 {
		return -1
	}
	r.counts[i].Add(1)
	return int(r.owners[i])
}

// RangeLoad is one range's share of the accesses counted by
// [Range.Observe].
type RangeLoad struct {
	Span
	// Count is the number of observed accesses.
	Count uint64
	// Share is Count over all observed accesses.
	Share float64
}

// Load returns every range's observed accesses, in range order.
func (r *Range) Load() []RangeLoad {
	out := make([]RangeLoad, len(r.spans))
	var total uint64
	for i := range r.spans {
		out[i] = RangeLoad{Span: r.spans[i], Count: r.counts[i].Load()}
		total += out[i].Count
	}
	if total > 0 {
		for i := range out {
			out[i].Share = float64(out[i].Count) / float64(total)
		}
	}
	return out
}

// Hot returns the ranges whose observed accesses exceed factor times the
// mean per range (a factor of 2 finds ranges with twice their fair share),
// busiest first: the candidates to split. A factor below 1 is treated as
// an error and returns nil with [ErrInvalidConfig].
func (r *Range) Hot(factor float64) ([]RangeLoad, error) {
	if !(factor >= 1) {
		return nil, fmt.Errorf("%w: hot-range factor %v (want ≥ 1)", ErrInvalidConfig, factor)
	}
	load := r.Load()
	mean := 1 / float64(len(load))
	var hot []RangeLoad
	for _, l := range load {
		if l.Count > 0 && l.Share > factor*mean {
			hot = append(hot, l)
		}
	}
	slices.SortFunc(hot, func(a, b RangeLoad) int {
		switch {
		case a.Count > b.Count:
			return -1
		case a.Count < b.Count:
			return 1
		}
		return 0
	})
	return hot, nil
}

// ResetLoad zeroes the counters of [Range.Observe].
func (r *Range) ResetLoad() {
	for i := range r.counts {
		r.counts[i].Store(0)
	}
}
