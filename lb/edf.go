package lb

import "sync"

// EDF is weighted round robin on an earliest-deadline-first scheduler, as
// Envoy implements it: each backend has a deadline 1/weight after its last
// pick, and the backend with the earliest deadline goes next. A backend of
// weight 3 is thus picked three times as often as one of weight 1, and the
// picks interleave.
//
// Pros (the guide, Weighted Round Robin): it considers server capacity, and
// costs O(log n) per pick, so it scales to hundreds of backends where
// [SmoothWeighted]'s O(n) scan does not. Cons: like every static weighting
// it doesn't adapt to current load. Use it for heterogeneous server
// environments, large backend sets, and fractional weights.
//
// Picks take a mutex around a binary heap. Weight changes rebuild the
// schedule.
type EDF struct{}

func (EDF) setup() (algoSetup, error) { return algoSetup{build: buildEDF}, nil }

func buildEDF(active []*endpoint, b *Balancer) (picker, error) {
	p := &edfPicker{eps: active, step: make([]float64, len(active)), heap: make([]edfEntry, len(active))}
	for i, e := range active {
		p.step[i] = 1 / e.weightNow()
		p.heap[i] = edfEntry{deadline: p.step[i], seq: uint64(i), idx: int32(i)}
		p.seq++
	}
	for i := len(p.heap)/2 - 1; i >= 0; i-- { // starting higher only adds leaves (or indices past the end), where down does nothing
		p.down(i)
	}
	// Advance by a random number of picks so that balancers built at the
	// same moment do not move in lockstep (Envoy does the same).
	for range b.rng.intn(len(active)) {
		p.pick(Request{}, 0)
	}
	return p, nil
}

type edfEntry struct {
	deadline float64
	seq      uint64 // insertion order breaks ties, so equal weights rotate
	idx      int32
}

type edfPicker struct {
	eps  []*endpoint
	step []float64 // 1/weight
	mu   sync.Mutex
	heap []edfEntry // guarded by mu; a min-heap on (deadline, seq)
	seq  uint64     // guarded by mu
}

func (p *edfPicker) less(i, j int) bool {
	a, b := &p.heap[i], &p.heap[j]
	return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq) // seqs are unique: < and <= agree
}

// down restores the heap property below i. Requires p.mu held (or the
// picker not yet published).
func (p *edfPicker) down(i int) {
	n := len(p.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && p.less(r, l) {
			m = r
		}
		if !p.less(m, i) {
			return
		}
		p.heap[i], p.heap[m] = p.heap[m], p.heap[i]
		i = m
	}
}

func (p *edfPicker) pick(Request, int64) *endpoint {
	p.mu.Lock()
	top := &p.heap[0]
	idx := top.idx
	top.deadline += p.step[idx]
	top.seq = p.seq
	p.seq++
	p.down(0)
	p.mu.Unlock()
	return p.eps[idx]
}
