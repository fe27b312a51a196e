package replica

// SessionEvent is one completed operation of a client session, as
// [CheckSessions] reads a history: a read or a write and the [Result] it
// returned.
type SessionEvent struct {
	Session string  // the client session
	Key     string  // the key read or written
	Write   bool    // a write; false for a read
	Result  *Result // what Get or Put returned
}

// SessionViolations counts, in a history, the operations that broke each
// session guarantee of Terry et al. (1994), per key.
type SessionViolations struct {
	// ReadYourWrites: a read that did not see a write the session made
	// before it.
	ReadYourWrites int
	// MonotonicReads: a read older than one the session made before it.
	MonotonicReads int
	// MonotonicWrites: a write not ordered after the session's previous
	// writes (so a reader may see them out of order, or side by side).
	MonotonicWrites int
	// WritesFollowReads: a write not ordered after what the session had
	// read.
	WritesFollowReads int
}

// Total returns the number of violations of all four guarantees.
func (v SessionViolations) Total() int {
	return v.ReadYourWrites + v.MonotonicReads + v.MonotonicWrites + v.WritesFollowReads
}

// CheckSessions counts the violations of each session guarantee in a
// history, given in the order each session saw its operations complete.
// Versions decide: a read sees a write when its context contains the
// write's dot; a write follows what it was written with, its causal past.
func CheckSessions(history []SessionEvent) SessionViolations {
	type key struct{ session, key string }
	wrote := map[key][]Dot{}
	read := map[key]VersionVector{}
	var v SessionViolations
	seesAll := func(clock VersionVector, dots []Dot) bool {
		for _, d := range dots {
			if !d.in(clock) {
				return false
			}
		}
		return true
	}
	for _, e := range history {
		if e.Result == nil {
			continue
		}
		k := key{e.Session, e.Key}
		if e.Write {
			if !seesAll(e.Result.past, wrote[k]) {
				v.MonotonicWrites++
			}
			if !e.Result.past.Covers(read[k]) {
				v.WritesFollowReads++
			}
			wrote[k] = append(wrote[k], e.Result.dot)
			continue
		}
		got := e.Result.Context.clock
		if !seesAll(got, wrote[k]) {
			v.ReadYourWrites++
		}
		if !got.Covers(read[k]) {
			v.MonotonicReads++
		}
		read[k] = read[k].Join(got)
	}
	return v
}
