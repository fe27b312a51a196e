package sim

import (
	"fmt"
	"math"
	"time"
)

// MMk holds the closed-form results of queueing theory for the M/M/k queue:
// Poisson arrivals at rate Lambda, exponential service at rate Mu per
// server, K servers sharing one FIFO queue. With K = 1 it is M/M/1.
// The lab checks its simulations against these formulas.
type MMk struct {
	Lambda, Mu float64 // per second
	K          int
}

// NewMMk validates the parameters: rates positive and the queue stable
// (Lambda < K·Mu).
func NewMMk(lambda, mu float64, k int) (MMk, error) {
	if !(lambda > 0) || !(mu > 0) || k < 1 {
		return MMk{}, fmt.Errorf("%w: M/M/k needs lambda>0, mu>0, k>=1, got lambda=%v mu=%v k=%d", ErrInvalid, lambda, mu, k)
	}
	if lambda >= float64(k)*mu {
		return MMk{}, fmt.Errorf("%w: M/M/k is unstable at utilisation %.3f (lambda=%v >= k·mu=%v)", ErrInvalid, lambda/(float64(k)*mu), lambda, float64(k)*mu)
	}
	return MMk{Lambda: lambda, Mu: mu, K: k}, nil
}

// Utilization returns ρ = λ/(kμ).
func (q MMk) Utilization() float64 { return q.Lambda / (float64(q.K) * q.Mu) }

// ErlangC returns the probability that an arriving job must wait.
func (q MMk) ErlangC() float64 {
	a := q.Lambda / q.Mu // offered load in Erlangs
	rho := q.Utilization()
	// Sum a^n/n! for n < k, computed iteratively to stay finite.
	term, sum := 1.0, 1.0
	for n := 1; n < q.K; n++ {
		term *= a / float64(n)
		sum += term
	}
	last := term * a / float64(q.K) / (1 - rho)
	return last / (sum + last)
}

// MeanSojourn returns the mean time in system, W = C/(kμ−λ) + 1/μ.
func (q MMk) MeanSojourn() time.Duration {
	w := q.ErlangC()/(float64(q.K)*q.Mu-q.Lambda) + 1/q.Mu
	return time.Duration(w * 1e9)
}

// SojournTail returns P(T > t) for the time in system T.
func (q MMk) SojournTail(t float64) float64 {
	c := q.ErlangC()
	a := float64(q.K)*q.Mu - q.Lambda // rate of the waiting time, given a wait
	mu := q.Mu
	var both float64 // P(Exp(a) + Exp(mu) > t)
	if math.Abs(a-mu) < 1e-12*mu {
		both = (1 + mu*t) * math.Exp(-mu*t)
	} else {
		both = (mu*math.Exp(-a*t) - a*math.Exp(-mu*t)) / (mu - a)
	}
	return (1-c)*math.Exp(-mu*t) + c*both
}

// SojournPercentile returns the p-th percentile (0 < p < 100) of the time in
// system, found by bisection on [MMk.SojournTail].
func (q MMk) SojournPercentile(p float64) time.Duration {
	target := 1 - p/100
	lo, hi := 0.0, 1/q.Mu
	for q.SojournTail(hi) > target {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if q.SojournTail(mid) > target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Duration((lo + hi) / 2 * 1e9)
}
