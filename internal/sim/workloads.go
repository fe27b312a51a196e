package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// KeyGen produces the keys of a workload, as integers in [0, n). Generators
// are not safe for concurrent use: give each goroutine its own.
type KeyGen interface {
	// Next returns the next key.
	Next() uint64
}

// Uniform draws keys uniformly from [0, n).
type Uniform struct {
	r *rand.Rand
	n uint64
}

// NewUniform returns a uniform generator over n keys.
func NewUniform(r *rand.Rand, n uint64) (*Uniform, error) {
	if n == 0 {
		return nil, fmt.Errorf("%w: uniform key count must be positive, got %d", ErrInvalid, n)
	}
	return &Uniform{r: r, n: n}, nil
}

// Next returns a key in [0, n).
func (u *Uniform) Next() uint64 { return u.r.Uint64N(u.n) }

// Zipf draws keys from [0, n) with P(rank k) ∝ 1/(k+1)^s, so key 0 is the
// most popular. Unlike math/rand's Zipf it accepts any exponent s > 0,
// including the s < 1 typical of web caches. It samples by binary search in
// a precomputed cumulative table (8 bytes per key).
type Zipf struct {
	r   *rand.Rand
	s   float64
	cdf []float64
}

// NewZipf returns a Zipf generator over n keys with exponent s.
func NewZipf(r *rand.Rand, s float64, n uint64) (*Zipf, error) {
	if !(s > 0) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("%w: zipf exponent must be a positive number, got %v", ErrInvalid, s)
	}
	if n == 0 || n > 1<<27 {
		return nil, fmt.Errorf("%w: zipf key count must be in [1, 2^27], got %d", ErrInvalid, n)
	}
	cdf := make([]float64, n)
	sum := 0.0
	for k := range cdf {
		sum += math.Pow(float64(k+1), -s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	cdf[n-1] = 1
	return &Zipf{r: r, s: s, cdf: cdf}, nil
}

// Next returns a key; smaller keys are more popular.
func (z *Zipf) Next() uint64 {
	u := z.r.Float64()
	// The first index whose cumulative probability reaches u.
	lo, hi := 0, len(z.cdf)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if z.cdf[mid] < u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return uint64(lo)
}

// Prob returns the probability of key k.
func (z *Zipf) Prob(k uint64) float64 {
	if k >= uint64(len(z.cdf)) {
		return 0
	}
	if k == 0 {
		return z.cdf[0]
	}
	return z.cdf[k] - z.cdf[k-1]
}

// HotSpot sends a fraction of operations to a small hot set of keys and the
// rest uniformly to the cold keys: the classic "20% of keys get 80% of
// traffic" workload.
type HotSpot struct {
	r       *rand.Rand
	n, hot  uint64
	hotOpsP float64
}

// NewHotSpot returns a hot-spot generator over n keys in which the first
// hotKeys fraction of the key space receives hotOps fraction of operations.
func NewHotSpot(r *rand.Rand, n uint64, hotKeys, hotOps float64) (*HotSpot, error) {
	if n < 2 {
		return nil, fmt.Errorf("%w: hot-spot key count must be at least 2, got %d", ErrInvalid, n)
	}
	if !(hotKeys > 0 && hotKeys < 1) {
		return nil, fmt.Errorf("%w: hot-spot key fraction must be in (0, 1), got %v", ErrInvalid, hotKeys)
	}
	if !(hotOps >= 0 && hotOps <= 1) {
		return nil, fmt.Errorf("%w: hot-spot operation fraction must be in [0, 1], got %v", ErrInvalid, hotOps)
	}
	hot := uint64(math.Round(float64(n) * hotKeys))
	hot = max(1, min(hot, n-1))
	return &HotSpot{r: r, n: n, hot: hot, hotOpsP: hotOps}, nil
}

// Next returns a key in [0, n); keys below the hot-set size are hot.
func (h *HotSpot) Next() uint64 {
	if h.r.Float64() < h.hotOpsP {
		return h.r.Uint64N(h.hot)
	}
	return h.hot + h.r.Uint64N(h.n-h.hot)
}

// HotKeys returns the size of the hot set.
func (h *HotSpot) HotKeys() uint64 { return h.hot }

// Sequential walks keys start, start+1, ..., start+n-1 and wraps around: a
// scan that touches every key once per pass.
type Sequential struct {
	start, n, i uint64
}

// NewSequential returns a scan over n keys beginning at start.
func NewSequential(start, n uint64) (*Sequential, error) {
	if n == 0 {
		return nil, fmt.Errorf("%w: scan length must be positive, got %d", ErrInvalid, n)
	}
	return &Sequential{start: start, n: n}, nil
}

// Next returns the next key of the scan.
func (s *Sequential) Next() uint64 {
	k := s.start + s.i
	s.i++
	if s.i == s.n {
		s.i = 0
	}
	return k
}

// Arrivals produces the gaps between successive request arrivals.
// Implementations are not safe for concurrent use.
type Arrivals interface {
	// Next returns the time from the previous arrival to the next one.
	Next() time.Duration
}

// Poisson arrivals: exponentially distributed gaps with a fixed mean rate.
type Poisson struct {
	r    *rand.Rand
	mean float64 // mean gap in nanoseconds
}

// NewPoisson returns Poisson arrivals at rate requests per second.
func NewPoisson(r *rand.Rand, rate float64) (*Poisson, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("%w: arrival rate must be a positive number of requests per second, got %v", ErrInvalid, rate)
	}
	return &Poisson{r: r, mean: 1e9 / rate}, nil
}

// Next returns an exponentially distributed gap.
func (p *Poisson) Next() time.Duration { return nanos(p.r.ExpFloat64() * p.mean) }

// ConstantArrivals are evenly spaced: one request every 1/rate seconds.
type ConstantArrivals struct{ gap time.Duration }

// NewConstantArrivals returns arrivals at exactly rate requests per second.
func NewConstantArrivals(rate float64) (*ConstantArrivals, error) {
	if !(rate > 0) || rate > 1e9 {
		return nil, fmt.Errorf("%w: arrival rate must be in (0, 1e9] requests per second, got %v", ErrInvalid, rate)
	}
	return &ConstantArrivals{gap: nanos(1e9 / rate)}, nil
}

// Next returns the fixed gap.
func (c *ConstantArrivals) Next() time.Duration { return c.gap }

// Bursty arrivals alternate between an "on" period at a high Poisson rate
// and an "off" period at a low one (possibly zero): an on/off modulated
// Poisson process, the usual model of bursty traffic.
type Bursty struct {
	r               *rand.Rand
	onRate, offRate float64
	onDur, offDur   float64 // nanoseconds
	t, phaseEnd     float64 // virtual nanoseconds since start
	emitted         time.Duration
	on              bool
}

// NewBursty returns on/off arrivals: onRate requests per second for onDur,
// then offRate (which may be 0) for offDur, repeating. The first period is
// "on".
func NewBursty(r *rand.Rand, onRate, offRate float64, onDur, offDur time.Duration) (*Bursty, error) {
	if !(onRate > 0) || math.IsInf(onRate, 0) {
		return nil, fmt.Errorf("%w: bursty on-rate must be positive, got %v", ErrInvalid, onRate)
	}
	if !(offRate >= 0) || math.IsInf(offRate, 0) {
		return nil, fmt.Errorf("%w: bursty off-rate must be zero or positive, got %v", ErrInvalid, offRate)
	}
	if onDur <= 0 || offDur < 0 {
		return nil, fmt.Errorf("%w: bursty periods must be positive (on) and non-negative (off), got on=%v off=%v", ErrInvalid, onDur, offDur)
	}
	return &Bursty{r: r, onRate: onRate, offRate: offRate, onDur: float64(onDur), offDur: float64(offDur), phaseEnd: float64(onDur), on: true}, nil
}

// Next returns the gap to the next arrival, crossing on/off boundaries as
// needed. Because exponential gaps are memoryless, a gap that crosses a
// boundary is redrawn at the new phase's rate from the boundary.
func (b *Bursty) Next() time.Duration {
	for {
		rate := b.offRate
		if b.on {
			rate = b.onRate
		}
		if rate > 0 {
			gap := b.r.ExpFloat64() * 1e9 / rate
			if b.t+gap <= b.phaseEnd {
				b.t += gap
				// Return whole nanoseconds measured from the last arrival, so
				// the sum of the gaps never drifts from the exact arrival time.
				at := nanos(math.Round(b.t))
				gap := at - b.emitted
				b.emitted = at
				return gap
			}
		}
		b.t = b.phaseEnd
		b.on = !b.on
		if b.on {
			b.phaseEnd += b.onDur
		} else {
			b.phaseEnd += b.offDur
		}
	}
}

// MeanRate returns the long-run average arrival rate in requests per second.
func (b *Bursty) MeanRate() float64 {
	return (b.onRate*b.onDur + b.offRate*b.offDur) / (b.onDur + b.offDur)
}

func nanos(f float64) time.Duration {
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}
