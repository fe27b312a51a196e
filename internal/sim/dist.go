package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Dist is a distribution of durations: service times, network delays, think
// times. Implementations are not safe for concurrent use.
type Dist interface {
	// Sample draws one duration.
	Sample() time.Duration
	// Mean returns the distribution's expected value.
	Mean() time.Duration
}

// Constant always returns the same duration: deterministic service (the D in
// M/D/1).
type Constant time.Duration

// Sample returns the constant.
func (c Constant) Sample() time.Duration { return time.Duration(c) }

// Mean returns the constant.
func (c Constant) Mean() time.Duration { return time.Duration(c) }

// Exponential service times: memoryless, the M in M/M/1.
type Exponential struct {
	r    *rand.Rand
	mean time.Duration
}

// NewExponential returns exponential durations with the given mean.
func NewExponential(r *rand.Rand, mean time.Duration) (*Exponential, error) {
	if mean <= 0 {
		return nil, fmt.Errorf("%w: exponential mean must be positive, got %v", ErrInvalid, mean)
	}
	return &Exponential{r: r, mean: mean}, nil
}

// Sample draws an exponential duration.
func (e *Exponential) Sample() time.Duration { return nanos(e.r.ExpFloat64() * float64(e.mean)) }

// Mean returns the configured mean.
func (e *Exponential) Mean() time.Duration { return e.mean }

// LogNormal durations: the long right tail that real service latencies show.
// It is parameterised by its median and the sigma of the underlying normal.
type LogNormal struct {
	r         *rand.Rand
	mu, sigma float64 // of ln(nanoseconds)
}

// NewLogNormal returns log-normal durations with the given median and shape
// sigma (0.5 is a mild tail, 1.5 a heavy one).
func NewLogNormal(r *rand.Rand, median time.Duration, sigma float64) (*LogNormal, error) {
	if median <= 0 {
		return nil, fmt.Errorf("%w: log-normal median must be positive, got %v", ErrInvalid, median)
	}
	if !(sigma > 0) || sigma > 10 {
		return nil, fmt.Errorf("%w: log-normal sigma must be in (0, 10], got %v", ErrInvalid, sigma)
	}
	return &LogNormal{r: r, mu: math.Log(float64(median)), sigma: sigma}, nil
}

// Sample draws a log-normal duration.
func (l *LogNormal) Sample() time.Duration {
	return nanos(math.Exp(l.mu + l.sigma*l.r.NormFloat64()))
}

// Mean returns exp(mu + sigma²/2).
func (l *LogNormal) Mean() time.Duration { return nanos(math.Exp(l.mu + l.sigma*l.sigma/2)) }

// Bimodal mixes a fast and a slow distribution: most requests are quick, a
// fraction pSlow are slow (a cache miss, a GC pause, a long report query).
type Bimodal struct {
	r          *rand.Rand
	fast, slow Dist
	pSlow      float64
}

// NewBimodal returns a mixture that draws from slow with probability pSlow
// and from fast otherwise.
func NewBimodal(r *rand.Rand, fast, slow Dist, pSlow float64) (*Bimodal, error) {
	if fast == nil || slow == nil {
		return nil, fmt.Errorf("%w: bimodal needs both a fast and a slow distribution", ErrInvalid)
	}
	if !(pSlow >= 0 && pSlow <= 1) {
		return nil, fmt.Errorf("%w: bimodal slow probability must be in [0, 1], got %v", ErrInvalid, pSlow)
	}
	return &Bimodal{r: r, fast: fast, slow: slow, pSlow: pSlow}, nil
}

// Sample draws from the slow mode with probability pSlow.
func (b *Bimodal) Sample() time.Duration {
	if b.r.Float64() < b.pSlow {
		return b.slow.Sample()
	}
	return b.fast.Sample()
}

// Mean returns the mixture's mean.
func (b *Bimodal) Mean() time.Duration {
	return nanos((1-b.pSlow)*float64(b.fast.Mean()) + b.pSlow*float64(b.slow.Mean()))
}
