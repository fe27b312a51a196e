package shard

// Placement maps a key to the shard that owns it. Every algorithm of this
// package implements it, so a data layer, the [Router] and the [Plan]
// function take any of them.
//
// Implementations are immutable after construction and safe for concurrent
// use; changing the shard set means building a new placement (and, for the
// data, planning and running a [Migration] between the two).
type Placement interface {
	// Locate returns the index, in [Placement.Nodes], of the shard that owns
	// key, or -1 when no shard owns it (only [Range] and [Directory] can
	// return -1; their Lookup methods say why with an error). It does not
	// allocate.
	Locate(key string) int
	// Nodes returns a copy of the shard set, in the order given to the
	// constructor.
	Nodes() []Node
}

// Compile-time checks that every algorithm is a Placement.
var (
	_ Placement = (*Modulo)(nil)
	_ Placement = (*Ring)(nil)
	_ Placement = (*Bounded)(nil)
	_ Placement = (*Jump)(nil)
	_ Placement = (*Rendezvous)(nil)
	_ Placement = (*Maglev)(nil)
	_ Placement = (*Range)(nil)
	_ Placement = (*Directory)(nil)
)
