package shard

import (
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
)

// Move is one key that changes shard.
type Move struct {
	Key      string
	From, To string
}

// Flow is the number of keys moving from one shard to another.
type Flow struct {
	From, To string
	Keys     int
}

// Plan is the result of [PlanMoves]: which keys move from where to where
// when a placement changes (shards added, removed or re-weighted).
type Plan struct {
	// Keys is the number of keys examined; Moved how many change shard.
	Keys, Moved int
	// Moves lists every moving key, in the order examined (empty when
	// [PlanOptions.CountOnly] is set).
	Moves []Move
	// Flows sums the moves per (from, to) pair, sorted by from then to.
	Flows []Flow
}

// Fraction returns Moved / Keys (0 for no keys).
func (p *Plan) Fraction() float64 {
	if p.Keys == 0 {
		return 0
	}
	return float64(p.Moved) / float64(p.Keys)
}

// PlanOptions configure [PlanMoves]. The zero value lists every move.
type PlanOptions struct {
	// CountOnly skips the per-key Moves list, for plans over millions of
	// keys where only the counts and flows matter.
	CountOnly bool
	// ShardKey maps a key to the part of it that is placed, as
	// [RouterOptions.ShardKey]. Nil means the whole key.
	ShardKey func(key string) string
}

// PlanMoves compares two placements over keys and lists exactly which keys
// move from which shard to which, by shard name (so shards may be added,
// removed or re-ordered between the two). A key that no shard of either
// placement owns is an error wrapping [ErrNoShardForKey].
//
// The ideal fraction when adding one shard to n is 1/(n+1), and 1/n when
// removing one; [Modulo] moves about n/(n+1), the consistent algorithms
// close to the ideal.
func PlanMoves(from, to Placement, keys iter.Seq[string], opts PlanOptions) (*Plan, error) {
	if from == nil || to == nil {
		return nil, fmt.Errorf("%w: nil placement", ErrInvalidConfig)
	}
	fromNodes, toNodes := from.Nodes(), to.Nodes()
	// Compare names, not indexes: the two shard sets may be ordered
	// differently.
	flows := map[[2]string]int{}
	p := &Plan{}
	for k := range keys {
		p.Keys++
		sk := k
		if opts.ShardKey != nil {
			sk = opts.ShardKey(k)
		}
		i, j := from.Locate(sk), to.Locate(sk)
		if i < 0 || j < 0 {
			return nil, fmt.Errorf("%w: key %q (old shard %d, new shard %d)", ErrNoShardForKey, k, i, j)
		}
		a, b := fromNodes[i].Name, toNodes[j].Name
		if a == b {
			continue
		}
		p.Moved++
		flows[[2]string{a, b}]++
		if !opts.CountOnly {
			p.Moves = append(p.Moves, Move{Key: k, From: a, To: b})
		}
	}
	for ft, n := range flows {
		p.Flows = append(p.Flows, Flow{From: ft[0], To: ft[1], Keys: n})
	}
	sort.Slice(p.Flows, func(x, y int) bool {
		if p.Flows[x].From != p.Flows[y].From {
			return p.Flows[x].From < p.Flows[y].From
		}
		return p.Flows[x].To < p.Flows[y].To
	})
	return p, nil
}

// RangeMove is a key range that changes shard between two [Range]
// layouts. An empty To means the new layout has no range for these keys:
// their data would become unreachable.
type RangeMove struct {
	Span
	From, To string
}

// PlanRanges lists the key ranges whose owner differs between two range
// layouts (after a [Range.Split], a [Range.Merge] or any re-cut), without
// enumerating keys. Adjacent moves between the same shards are joined.
func PlanRanges(from, to *Range) []RangeMove {
	// Every boundary of either layout cuts the key space into pieces whose
	// owners are constant in both.
	var cuts []string
	for _, r := range []*Range{from, to} {
		for _, s := range r.spans {
			cuts = append(cuts, s.Start)
			if s.End != "" {
				cuts = append(cuts, s.End)
			}
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var out []RangeMove
	for i, start := range cuts {
		end := ""
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		a := from.find(start)
		if a < 0 {
			continue // no data here in the old layout
		}
		src := from.spans[a].Shard
		dst := ""
		if b := to.find(start); b >= 0 {
			dst = to.spans[b].Shard
		}
		if src == dst {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == start && out[n-1].From == src && out[n-1].To == dst {
			out[n-1].End = end
			continue
		}
		out = append(out, RangeMove{Span: Span{Start: start, End: end, Shard: dst}, From: src, To: dst})
	}
	return out
}

// String renders a range move as "[start, end) a → b".
func (m RangeMove) String() string {
	end := m.End
	if end == "" {
		end = "∞"
	} else {
		end = fmt.Sprintf("%q", end)
	}
	to := m.To
	if to == "" {
		to = "(none)"
	}
	return strings.Join([]string{fmt.Sprintf("[%q, %s)", m.Start, end), m.From, "→", to}, " ")
}
