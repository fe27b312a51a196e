package lb

import (
	"math"
	"math/rand/v2"
	"time"
)

// Options configure what every balancer does, whatever its [Algorithm]:
// time and randomness, panic mode, slow start, outlier detection,
// statistics and events. An algorithm's own settings are on its value. The
// zero value is ready to use: the runtime's clock and random generator, a
// panic threshold of 50%, no slow start, no outlier detection, no hook.
type Options struct {
	// Now is the clock; nil means time.Now. Give a simulation's clock to
	// run a balancer on virtual time.
	Now func() time.Time
	// Rand is the random source of the randomised algorithms and of slow
	// start. Nil means the runtime's per-thread generator (fast, lock-free,
	// not reproducible). A non-nil Rand makes picks reproducible for a seed;
	// it is then used under a mutex, so give one only to simulations and
	// tests.
	Rand *rand.Rand

	// PanicThreshold is the share of backends (0–1) that must be healthy
	// for unhealthy and ejected ones to stay out of rotation. Below it the
	// balancer "panics" as Envoy does: it spreads traffic over every
	// backend that is not draining, because overloading the few healthy
	// ones would take them down too. Zero means 0.5; values outside [0, 1]
	// are errors. See DisablePanic.
	PanicThreshold float64
	// DisablePanic turns panic mode off: unhealthy and ejected backends stay
	// out of rotation however few remain.
	DisablePanic bool

	// SlowStart, if not nil, ramps up the traffic of backends that join or
	// return to rotation. Nil means no slow start.
	SlowStart *SlowStartOptions
	// Outlier, if not nil, enables passive outlier detection: backends
	// that fail too often leave rotation for a growing time. Nil means no
	// outlier detection.
	Outlier *OutlierOptions

	// DisableStats turns off the per-backend request, in-flight and
	// latency figures that every pick and Done otherwise keep (two atomic
	// adds per request, on a cache line of the backend's own). Without them
	// a [RoundRobin] pick is one atomic add, as in gRPC's round-robin
	// picker, and a successful Done does nothing; failures are still
	// counted and still feed outlier detection. [Balancer.Stats] then
	// reports zero Requests, InFlight and Latency. Algorithms that pick by
	// load ([LeastConn], [WeightedLeastConn], [P2C], [PeakEWMA], [Geo]) and
	// backends with a Capacity need the counters: with DisableStats they
	// are configuration errors.
	DisableStats bool

	// OnEvent, if not nil, is called for every state change, addition,
	// removal and panic-mode change. It runs outside the balancer's lock
	// and may call the balancer; it must not block for long, because it
	// runs on the goroutine that caused the change.
	OnEvent func(Event)

	// Clock, if not nil, is the coarse clock that picks read when they need
	// the time, instead of the monotonic clock (see [CoarseClock] for what
	// each costs). It cannot be combined with Now.
	Clock *CoarseClock

	// DrainTimeout bounds how long [Follow] lets a backend that its source
	// no longer reports finish its requests in flight before removing it.
	// Zero means 30s; negative is an error.
	DrainTimeout time.Duration
}

// SlowStartOptions configure slow start, as in Envoy: a backend that joins
// or returns to rotation gets a share of traffic that grows from
// MinWeightPercent to its full share over Window, so a cold cache or JIT is
// not flooded (least-connections and P2C would otherwise send a fresh,
// empty backend everything at once). The hash algorithms keep affinity and
// ignore slow start.
type SlowStartOptions struct {
	// Window is how long the ramp lasts. Zero means 30s; negative is an
	// error.
	Window time.Duration
	// Aggression shapes the ramp: the share is (elapsed/Window)^(1/Aggression),
	// so 1 is linear and larger values ramp faster at first. Zero means 1;
	// negative, NaN or infinite values are errors.
	Aggression float64
	// MinWeightPercent is the share (in percent of the full share) at the
	// start of the ramp. Zero means 10; values outside (0, 100] are errors.
	MinWeightPercent float64
}

// OutlierOptions configure passive outlier detection, modelled on Envoy's:
// the balancer watches the results reported through [Pick.Done] and
// ejects a backend after ConsecutiveFailures failures in a row, or when its
// failure percentage over an Interval reaches FailurePercent. An ejected
// backend leaves rotation for BaseEjectionTime × (number of times it was
// ejected), capped at MaxEjectionTime, then returns (through slow start if
// configured). At most MaxEjectionPercent of the backends are ejected at
// once, but always at least one may be.
type OutlierOptions struct {
	// ConsecutiveFailures ejects a backend after this many failures in a
	// row. Zero means 5; negative disables the check.
	ConsecutiveFailures int
	// FailurePercent ejects a backend whose failures reach this percentage
	// of its requests within one Interval. Zero disables the check; values
	// above 100 or NaN are errors.
	FailurePercent float64
	// MinRequests is the fewest requests in an Interval for FailurePercent
	// to judge a backend. Zero means 5; negative is an error.
	MinRequests int
	// Interval is the window of FailurePercent. Zero means 10s; negative is
	// an error.
	Interval time.Duration
	// BaseEjectionTime is the first ejection's length. Zero means 30s;
	// negative is an error.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps the growing ejection time. Zero means 300s; a
	// value below BaseEjectionTime is an error.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent is the largest share of backends ejected at once.
	// Zero means 10; values above 100 or negative are errors. At least one
	// backend may always be ejected.
	MaxEjectionPercent float64
}

// settings is a validated Options with defaults applied.
type settings struct {
	Options
	slow    SlowStartOptions
	outlier OutlierOptions
}

func badFloat(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

func (o Options) settings() (settings, error) {
	s := settings{Options: o}
	if badFloat(o.PanicThreshold) || o.PanicThreshold < 0 || o.PanicThreshold > 1 {
		return s, configErr(nil, "panic threshold %v (want a share in [0, 1]; 0 means 0.5)", o.PanicThreshold)
	}
	if s.PanicThreshold == 0 {
		s.PanicThreshold = 0.5
	}
	if o.Clock != nil && o.Now != nil {
		return s, configErr(nil, "both Clock and Now are set (want one clock)")
	}
	if o.Clock != nil && o.Clock.stop == nil {
		return s, configErr(nil, "Clock is a CoarseClock not built by NewCoarseClock")
	}
	if o.DrainTimeout < 0 {
		return s, configErr(nil, "drain timeout %v (want ≥ 0; 0 means 30s)", o.DrainTimeout)
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = 30 * time.Second
	}
	if o.SlowStart != nil {
		ss := *o.SlowStart
		switch {
		case ss.Window < 0:
			return s, configErr(nil, "slow-start window %v (want ≥ 0; 0 means 30s)", ss.Window)
		case badFloat(ss.Aggression) || ss.Aggression < 0:
			return s, configErr(nil, "slow-start aggression %v (want a finite number ≥ 0; 0 means 1)", ss.Aggression)
		case badFloat(ss.MinWeightPercent) || ss.MinWeightPercent < 0 || ss.MinWeightPercent > 100:
			return s, configErr(nil, "slow-start minimum weight %v%% (want (0, 100]; 0 means 10)", ss.MinWeightPercent)
		}
		if ss.Window == 0 {
			ss.Window = 30 * time.Second
		}
		if ss.Aggression == 0 {
			ss.Aggression = 1
		}
		if ss.MinWeightPercent == 0 {
			ss.MinWeightPercent = 10
		}
		s.slow = ss
	}
	if o.Outlier != nil {
		od := *o.Outlier
		switch {
		case badFloat(od.FailurePercent) || od.FailurePercent < 0 || od.FailurePercent > 100:
			return s, configErr(nil, "outlier failure percentage %v (want [0, 100]; 0 disables)", od.FailurePercent)
		case od.MinRequests < 0:
			return s, configErr(nil, "outlier minimum requests %d (want ≥ 0; 0 means 5)", od.MinRequests)
		case od.Interval < 0:
			return s, configErr(nil, "outlier interval %v (want ≥ 0; 0 means 10s)", od.Interval)
		case od.BaseEjectionTime < 0:
			return s, configErr(nil, "outlier base ejection time %v (want ≥ 0; 0 means 30s)", od.BaseEjectionTime)
		case badFloat(od.MaxEjectionPercent) || od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100:
			return s, configErr(nil, "outlier maximum ejection %v%% (want [0, 100]; 0 means 10)", od.MaxEjectionPercent)
		}
		if od.ConsecutiveFailures == 0 {
			od.ConsecutiveFailures = 5
		}
		if od.MinRequests == 0 {
			od.MinRequests = 5
		}
		if od.Interval == 0 {
			od.Interval = 10 * time.Second
		}
		if od.BaseEjectionTime == 0 {
			od.BaseEjectionTime = 30 * time.Second
		}
		if od.MaxEjectionTime == 0 {
			od.MaxEjectionTime = max(300*time.Second, od.BaseEjectionTime)
		}
		if od.MaxEjectionTime < od.BaseEjectionTime {
			return s, configErr(nil, "outlier maximum ejection time %v is below the base ejection time %v", od.MaxEjectionTime, od.BaseEjectionTime)
		}
		if od.MaxEjectionPercent == 0 {
			od.MaxEjectionPercent = 10
		}
		s.outlier = od
	}
	return s, nil
}
