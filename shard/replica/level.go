package replica

import "fmt"

// Level is a named consistency level, as Cassandra's and DynamoDB's clients
// name them: how many of a key's N replicas a read (R) or a write (W) waits
// for.
type Level uint8

// The levels. The zero Level means [Quorum].
const (
	// One waits for one replica: the fastest and most available, and a
	// read may miss the latest write (Cassandra ONE, DynamoDB's eventually
	// consistent read).
	One Level = iota + 1
	// Quorum waits for a majority, ⌊N/2⌋+1: a read quorum and a write
	// quorum overlap, so a read sees every write acknowledged before it
	// started (Cassandra QUORUM) — though not, alone, a linearizable
	// register: see [Options.WriteBack].
	Quorum
	// All waits for every replica: one down replica makes the request
	// fail (Cassandra ALL).
	All
)

// String returns the level's name, as Cassandra spells it.
func (l Level) String() string {
	switch l {
	case 0:
		return "QUORUM (default)"
	case One:
		return "ONE"
	case Quorum:
		return "QUORUM"
	case All:
		return "ALL"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// replicas returns how many of n replicas the level waits for.
func (l Level) replicas(n int) int {
	switch l {
	case One:
		return 1
	case All:
		return n
	}
	return n/2 + 1
}

// Options are the per-request settings of [Coordinator.Get] and
// [Coordinator.Put]. The zero value is a QUORUM request on the
// coordinator's N replicas.
type Options struct {
	// Level sets R and W; zero means [Quorum].
	Level Level
	// N is the number of replicas of the key: its first N distinct nodes
	// of the placement. Zero means the coordinator's Config.N; it must not
	// exceed the number of nodes.
	N int
	// R and W, when not zero, set the replicas a read or a write waits
	// for, in [1, N], instead of Level.
	R, W int
	// Session, when not nil, gives the request the session guarantees of
	// Terry et al. (1994) and records what it read or wrote.
	Session *Session
	// WriteBack makes a read write what it returns back to W replicas
	// before answering (the read phase of ABD, Attiya, Bar-Noy and Dolev
	// 1995): with R + W > N this makes reads and writes linearizable, at
	// the cost of a second round trip when replicas disagree.
	WriteBack bool
}

// quorum resolves opts against the coordinator's default N and the
// number of nodes into the request's N, R and W.
func (o Options) quorum(defN, nodes int) (n, r, w int, err error) {
	if o.Level > All {
		return 0, 0, 0, fmt.Errorf("%w: unknown level %v (want One, Quorum or All)", ErrInvalidLevel, o.Level)
	}
	n = o.N
	switch {
	case n < 0:
		return 0, 0, 0, fmt.Errorf("%w: N = %d (want ≥ 1, or 0 for the coordinator's %d)", ErrInvalidLevel, n, defN)
	case n == 0:
		n = defN
	}
	if n > nodes {
		return 0, 0, 0, fmt.Errorf("%w: N = %d replicas on %d nodes", ErrInvalidLevel, n, nodes)
	}
	r, w = o.Level.replicas(n), o.Level.replicas(n)
	for _, x := range []struct {
		name string
		v    int
		dst  *int
	}{{"R", o.R, &r}, {"W", o.W, &w}} {
		switch {
		case x.v < 0 || x.v > n:
			return 0, 0, 0, fmt.Errorf("%w: %s = %d outside [1, N = %d]", ErrInvalidLevel, x.name, x.v, n)
		case x.v > 0:
			*x.dst = x.v
		}
	}
	return n, r, w, nil
}
