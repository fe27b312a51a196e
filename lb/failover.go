package lb

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// FailoverOptions configure a [Failover]. The zero value tries up to three
// backends and retries every error except the caller's own cancellation.
type FailoverOptions struct {
	// Attempts is the most backends tried for one request, the first
	// included. Zero means 3; negative is an error.
	Attempts int
	// Retryable reports whether a failed attempt may be retried on another
	// backend (connection refused, timeout, 503). Nil means every error is
	// retryable. Errors of the caller's context are never retried.
	Retryable func(error) bool
	// OnRetry, if not nil, is called before each retry with the backend
	// that failed, the attempt number (1 for the first) and its error.
	OnRetry func(addr string, attempt int, err error)
	// Now is the clock that times attempts; nil means time.Now.
	Now func() time.Time
}

// Failover runs a request on a backend chosen by a [Balancer] and, when it
// fails with a retryable error, on another one: automatic failover
// (the guide, Fault Tolerance → Failover: detect and switch automatically,
// route around failures). Every attempt's result is reported to the
// balancer, so outlier detection and load-aware algorithms learn from
// failed attempts too. A request never goes to the same backend twice
// unless it is the only one in rotation.
//
// Retries multiply load on a struggling system; keep Attempts small and
// retry only errors that are safe to retry (idempotent requests, or
// failures known to happen before the backend did any work). Failover is
// safe for concurrent use; build it with [NewFailover] (the zero value's
// Do returns an error).
type Failover struct {
	b    *Balancer
	opts FailoverOptions

	requests, retries, exhausted atomic.Uint64
}

// FailoverStats counts a Failover's work.
type FailoverStats struct {
	// Requests is the number of calls to Do.
	Requests uint64
	// Retries is the number of attempts after the first.
	Retries uint64
	// Exhausted counts calls that failed on every attempt or ran out of
	// backends.
	Exhausted uint64
}

// NewFailover returns a Failover over b.
func NewFailover(b *Balancer, opts FailoverOptions) (*Failover, error) {
	if b == nil {
		return nil, configErr(nil, "failover needs a balancer, got nil")
	}
	if opts.Attempts < 0 {
		return nil, configErr(nil, "failover attempts %d (want ≥ 0; 0 means 3)", opts.Attempts)
	}
	if opts.Attempts == 0 {
		opts.Attempts = 3
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Failover{b: b, opts: opts}, nil
}

// Do runs fn on up to Attempts backends until it succeeds. It returns nil
// on success; fn's last error (wrapped with the number of attempts) when
// every attempt failed or the error is not retryable; an error wrapping
// [ErrNoHealthyBackend] or [ErrAtCapacity] when no backend could be picked
// at all; or ctx's error.
func (f *Failover) Do(ctx context.Context, req Request, fn func(ctx context.Context, b Backend) error) error {
	switch {
	case f.b == nil:
		return configErr(nil, "failover used without NewFailover")
	case fn == nil:
		return configErr(nil, "failover needs a function to run, got nil")
	}
	f.requests.Add(1)
	var last error
	avoid := req.Avoid
	for attempt := 1; attempt <= f.opts.Attempts; attempt++ {
		req.Avoid = avoid
		p, err := f.b.Pick(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f.exhausted.Add(1)
			if last != nil {
				return fmt.Errorf("lb: failover: %d attempts failed, no backend left (%w): %w", attempt-1, err, last)
			}
			return err
		}
		addr := p.Addr()
		start := f.opts.Now()
		err = f.run(ctx, p, fn)
		lat := f.opts.Now().Sub(start)
		if err == nil {
			p.Done(Result{Latency: lat})
			return nil
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			p.Done(Result{Latency: lat}) // the caller gave up; not the backend's fault
			return err
		}
		p.Done(Result{Err: err, Latency: lat})
		last = err
		if f.opts.Retryable != nil && !f.opts.Retryable(err) {
			return err
		}
		if attempt < f.opts.Attempts {
			f.retries.Add(1)
			if f.opts.OnRetry != nil {
				f.opts.OnRetry(addr, attempt, err)
			}
			avoid = append(avoid[:len(avoid):len(avoid)], addr)
		}
	}
	f.exhausted.Add(1)
	return fmt.Errorf("lb: failover: all %d attempts failed: %w", f.opts.Attempts, last)
}

// errPanicked is the result reported for an attempt whose function
// panicked or called runtime.Goexit.
var errPanicked = errors.New("lb: failover: the function did not return")

// run calls fn on p's backend. If fn panics (or calls runtime.Goexit),
// the pick is finished as failed before the panic goes on: its in-flight
// slot would otherwise stay taken for good, and a backend with a Capacity
// would end up refusing every request.
func (f *Failover) run(ctx context.Context, p Pick, fn func(ctx context.Context, b Backend) error) error {
	returned := false
	defer func() {
		if !returned {
			p.Done(Result{Err: errPanicked})
		}
	}()
	err := fn(ctx, p.Backend())
	returned = true
	return err
}

// Stats returns the counters.
func (f *Failover) Stats() FailoverStats {
	return FailoverStats{Requests: f.requests.Load(), Retries: f.retries.Load(), Exhausted: f.exhausted.Load()}
}
