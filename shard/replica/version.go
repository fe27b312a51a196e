package replica

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// VersionVector maps a node name to the number of writes that node has
// coordinated for one key: the causal history of a version. A nil vector is
// the empty history.
type VersionVector map[string]uint64

// Covers reports whether v has seen every write that w has: v ≥ w entry by
// entry.
func (v VersionVector) Covers(w VersionVector) bool {
	for n, c := range w {
		if v[n] < c {
			return false
		}
	}
	return true
}

// Join returns a new vector holding, for every node, the larger of v's and
// w's counters: the history of both.
func (v VersionVector) Join(w VersionVector) VersionVector {
	out := maps.Clone(v)
	if out == nil {
		out = make(VersionVector, len(w))
	}
	for n, c := range w {
		out[n] = max(out[n], c)
	}
	return out
}

// Dot names one write: the node that coordinated it and that node's
// counter for the key at the time.
type Dot struct {
	Node    string `json:"node"`
	Counter uint64 `json:"counter"`
}

// in reports whether the write d is part of the history v.
func (d Dot) in(v VersionVector) bool { return v[d.Node] >= d.Counter }

// Sibling is one value of a key with its dotted version (Preguiça et al.,
// "Dotted Version Vectors", 2010): the write's own dot and the causal
// context (Past) the client wrote it with. A sibling is obsolete once
// another sibling's Past contains its dot; two siblings whose dots neither
// Past contains were written concurrently, and both are kept.
type Sibling struct {
	Value []byte        `json:"value"`
	Dot   Dot           `json:"dot"`
	Past  VersionVector `json:"past,omitempty"`
	// Time is the coordinator's wall clock at the write, in Unix
	// nanoseconds: what last-writer-wins mode orders concurrent writes by.
	Time int64 `json:"time"`
}

// Record is what a replica stores for one key: the siblings that no write
// has superseded, and Clock, the join of every version the replica has
// merged (the causal context a reader gets and the next write carries).
type Record struct {
	Siblings []Sibling     `json:"siblings"`
	Clock    VersionVector `json:"clock"`
	// LWW marks a record of last-writer-wins mode: merging keeps only the
	// sibling with the latest Time (ties broken by dot), the others are
	// lost.
	LWW bool `json:"lww,omitempty"`
}

// merge returns the record holding both a's and b's writes: the union of
// their siblings less those another sibling supersedes (in LWW mode, only
// the latest), and the join of their clocks. It is commutative, associative
// and idempotent, so replicas that exchange records in any order converge.
// Neither argument is modified.
func merge(a, b Record) Record {
	all := make([]Sibling, 0, len(a.Siblings)+len(b.Siblings))
	all = append(all, a.Siblings...)
	for _, s := range b.Siblings {
		if !slices.ContainsFunc(all, func(t Sibling) bool { return t.Dot == s.Dot }) {
			all = append(all, s)
		}
	}
	out := Record{Clock: a.Clock.Join(b.Clock), LWW: a.LWW || b.LWW}
	slices.SortFunc(all, compareSiblings)
	if out.LWW {
		// Last writer wins by timestamp alone, as in Cassandra: a write
		// made after reading a later-stamped value still loses to it.
		if len(all) > 0 {
			out.Siblings = all[len(all)-1:]
		}
		return out
	}
	for i, s := range all {
		superseded := slices.ContainsFunc(all, func(t Sibling) bool {
			return t.Dot != s.Dot && s.Dot.in(t.Past)
		})
		if !superseded {
			out.Siblings = append(out.Siblings, all[i])
		}
	}
	return out
}

// compareSiblings orders siblings by time, then dot: the last one wins in
// last-writer-wins mode, and every replica lists siblings in one order.
func compareSiblings(a, b Sibling) int {
	return cmp.Or(
		cmp.Compare(a.Time, b.Time),
		cmp.Compare(a.Dot.Node, b.Dot.Node),
		cmp.Compare(a.Dot.Counter, b.Dot.Counter),
	)
}

// equal reports whether two records hold the same versions.
func (r Record) equal(o Record) bool {
	if len(r.Siblings) != len(o.Siblings) || !r.Clock.Covers(o.Clock) || !o.Clock.Covers(r.Clock) {
		return false
	}
	for i := range r.Siblings {
		if r.Siblings[i].Dot != o.Siblings[i].Dot {
			return false
		}
	}
	return true
}

// validate checks a record that came from another node: a node that sends
// a malformed one is treated as failed rather than trusted.
func (r Record) validate(maxValue int) error {
	if len(r.Siblings) > maxSiblings {
		return fmt.Errorf("%w: %d siblings (at most %d)", ErrBadReply, len(r.Siblings), maxSiblings)
	}
	for _, s := range r.Siblings {
		switch {
		case s.Dot.Node == "" || s.Dot.Counter == 0:
			return fmt.Errorf("%w: sibling with dot %v", ErrBadReply, s.Dot)
		case !s.Dot.in(r.Clock):
			return fmt.Errorf("%w: sibling dot %v outside the record's clock", ErrBadReply, s.Dot)
		case s.Dot.in(s.Past):
			return fmt.Errorf("%w: sibling dot %v inside its own past", ErrBadReply, s.Dot)
		case len(s.Value) > maxValue:
			return fmt.Errorf("%w: value of %d bytes (at most %d)", ErrBadReply, len(s.Value), maxValue)
		}
	}
	for n, c := range r.Clock {
		if n == "" || c == 0 {
			return fmt.Errorf("%w: clock entry %q: %d", ErrBadReply, n, c)
		}
	}
	return nil
}

// maxSiblings bounds the siblings a record may hold on the wire.
const maxSiblings = 1024

// values returns the siblings' values, in the record's order.
func (r Record) values() [][]byte {
	out := make([][]byte, len(r.Siblings))
	for i, s := range r.Siblings {
		out[i] = bytes.Clone(s.Value)
	}
	return out
}
