package resilience

import (
	"context"
	"time"
)

// Policy is anything that runs a call on the caller's behalf: every policy
// of this package and a [Pipeline] of them. Execute must return fn's result
// when it runs fn and fn succeeds.
type Policy[T any] interface {
	Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error)
}

// Permit is what a [Guard] hands out on entry and takes back on exit: the
// moment the call was let in and the context it runs under.
type Permit struct {
	// Start is when the guard let the call in.
	Start time.Time
	// Ctx is the context the call must run under; a guard may derive it.
	Ctx context.Context

	slot BulkheadSlot // the slot a Bulkhead gave, released by its Exit
}

// Guard is a policy that decides whether a call may run and learns from its
// outcome without looking at its result value: [Bulkhead],
// [AdaptiveThrottle], [LoadShedder], [FaultInjector], [Switch]. Because it
// is not generic, one guard (one bulkhead pool, one throttle) can protect
// calls of any result type; [Guarded] turns it into a [Policy].
//
// Every Enter that returns a nil error must be matched by exactly one Exit
// with the call's error.
type Guard interface {
	Enter(ctx context.Context) (Permit, error)
	Exit(p Permit, err error)
}

// Guarded returns g as a Policy[T]: Execute calls g.Enter, then fn under
// the permit's context, then g.Exit. A nil g makes every Execute return an
// error wrapping [ErrInvalidConfig].
func Guarded[T any](g Guard) Policy[T] { return guarded[T]{g} }

type guarded[T any] struct{ g Guard }

func (p guarded[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if fn == nil {
		return zero, configError("guard: nil function")
	}
	if p.g == nil {
		return zero, configError("guard: nil Guard")
	}
	permit, err := p.g.Enter(ctx)
	if err != nil {
		return zero, err
	}
	v, err := fn(permit.Ctx)
	p.g.Exit(permit, err)
	return v, err
}

// Pipeline composes policies into one. The first policy is the outermost:
// it sees the call first and the final outcome last. The documented order,
// as in failsafe-go and resilience4j, is
//
//	Fallback → Retry → CircuitBreaker → Bulkhead → Timeout → call
//
// Fallback answers for everything inside it; Retry retries what the breaker,
// bulkhead and per-attempt timeout let through (a rejection by an open
// breaker is retried after backoff, by which time it may have closed); the
// breaker counts every attempt; the bulkhead bounds the concurrency of
// attempts, and the timeout bounds each one. Put a second [Timeout] before
// Retry to bound the whole call; put a [Hedge] where Retry is for
// latency-bound reads.
//
// A Pipeline is safe for concurrent use if its policies are.
type Pipeline[T any] struct {
	policies []Policy[T]
	// known is true when every policy is one of this package's that does
	// not keep the function it is given: Execute then calls them directly,
	// so the function each level hands to the next stays on the stack.
	known bool
}

// NewPipeline returns the composition of policies, outermost first. It
// needs at least one policy and no nil ones.
func NewPipeline[T any](policies ...Policy[T]) (*Pipeline[T], error) {
	if len(policies) == 0 {
		return nil, configError("pipeline needs at least one policy")
	}
	for i, p := range policies {
		if p == nil {
			return nil, configError("pipeline policy %d is nil", i)
		}
	}
	p := &Pipeline[T]{policies: append([]Policy[T](nil), policies...), known: true}
	for _, q := range p.policies {
		switch q.(type) {
		case *Fallback[T], *Retry[T], *CircuitBreaker[T], *Timeout[T], guarded[T]:
		default:
			p.known = false
		}
	}
	return p, nil
}

// Execute runs fn through every policy of the pipeline.
func (p *Pipeline[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	if p == nil || len(p.policies) == 0 {
		var zero T
		return zero, notMade("pipeline", "NewPipeline")
	}
	if fn == nil {
		var zero T
		return zero, configError("pipeline: nil function")
	}
	if p.known {
		return p.runKnown(ctx, 0, fn)
	}
	return p.run(ctx, 0, fn)
}

// run calls policy i with a function that runs the rest of the pipeline.
// The interface call lets that function escape, so each level allocates
// it.
func (p *Pipeline[T]) run(ctx context.Context, i int, fn func(context.Context) (T, error)) (T, error) {
	if i == len(p.policies)-1 {
		return p.policies[i].Execute(ctx, fn)
	}
	return p.policies[i].Execute(ctx, func(ctx context.Context) (T, error) { return p.run(ctx, i+1, fn) })
}

// runKnown is run for pipelines of this package's policies: calling their
// Execute methods directly lets the compiler see that none keeps fn, so the
// per-level functions live on the stack and the composition allocates
// nothing of its own.
func (p *Pipeline[T]) runKnown(ctx context.Context, i int, fn func(context.Context) (T, error)) (T, error) {
	next := fn
	if i < len(p.policies)-1 {
		next = func(ctx context.Context) (T, error) { return p.runKnown(ctx, i+1, fn) }
	}
	switch q := p.policies[i].(type) {
	case *Fallback[T]:
		return q.Execute(ctx, next)
	case *Retry[T]:
		return q.Execute(ctx, next)
	case *CircuitBreaker[T]:
		return q.Execute(ctx, next)
	case *Timeout[T]:
		return q.Execute(ctx, next)
	case guarded[T]:
		return q.Execute(ctx, next)
	}
	var zero T
	return zero, configError("pipeline: policy %d changed type", i) // unreachable: known checked every type
}

// Timeout bounds a call: fn runs under a context that ends after the
// duration, and a call that ends because of it returns a [*PolicyError]
// wrapping [ErrTimeout] and context.DeadlineExceeded. Inside a [Retry] it
// bounds each attempt; outside, the whole call.
//
// Pros: a slow dependency cannot hold the caller's goroutines forever
// (the guide: "Timeout Configuration: How long to wait"). Cons: a timeout
// too short fails calls that would have succeeded; too long, and it does
// not protect. fn must honour its context: Timeout does not abandon a
// running call on another goroutine (that would leak it), so a call that
// ignores cancellation still takes as long as it takes.
//
// A Timeout is safe for concurrent use.
type Timeout[T any] struct {
	name        string
	d           time.Duration
	withTimeout func(context.Context, time.Duration) (context.Context, context.CancelFunc)

	calls, timeouts counter
}

// TimeoutOptions configure a [Timeout] made by [NewTimeoutWith].
type TimeoutOptions struct {
	// Name identifies the policy in errors. Default "".
	Name string
	// WithTimeout derives the context a call runs under, which must end
	// with context.DeadlineExceeded once d has passed. Default
	// context.WithTimeout. A simulation passes one that ends the context
	// on virtual time.
	WithTimeout func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
}

// TimeoutStats counts calls and how many the timeout cut short.
type TimeoutStats struct{ Calls, Timeouts uint64 }

// Stats returns the timeout's counters.
func (t *Timeout[T]) Stats() TimeoutStats {
	return TimeoutStats{Calls: t.calls.load(), Timeouts: t.timeouts.load()}
}

// NewTimeout returns a timeout of d (> 0) named name. It is shorthand for
// NewTimeoutWith(d, TimeoutOptions{Name: name}).
func NewTimeout[T any](name string, d time.Duration) (*Timeout[T], error) {
	return NewTimeoutWith[T](d, TimeoutOptions{Name: name})
}

// NewTimeoutWith returns a timeout of d (> 0) configured by opts.
func NewTimeoutWith[T any](d time.Duration, opts TimeoutOptions) (*Timeout[T], error) {
	if d <= 0 {
		return nil, configError("timeout %q must be positive, got %v", opts.Name, d)
	}
	if opts.WithTimeout == nil {
		opts.WithTimeout = context.WithTimeout
	}
	return &Timeout[T]{name: opts.Name, d: d, withTimeout: opts.WithTimeout}, nil
}

// Execute runs fn with the deadline.
func (t *Timeout[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if t == nil || t.withTimeout == nil {
		return zero, notMade("timeout", "NewTimeout")
	}
	if fn == nil {
		return zero, configError("timeout %q: nil function", t.name)
	}
	t.calls.add()
	cctx, cancel := t.withTimeout(ctx, t.d)
	v, err := fn(cctx)
	timedOut := cctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil && timedOut {
		t.timeouts.add()
		return v, rejected("timeout", t.name, ErrTimeout, err)
	}
	return v, err
}

// Fallback answers a failed call with an alternative: a fixed value or the
// result of a function (the guide: "Fallback Mechanisms: Alternative
// responses"). It is the outermost policy of a pipeline. Pros: the user
// gets a degraded answer instead of an error. Cons: a fallback can hide an
// outage from monitoring — watch [Fallback.Stats].
//
// A Fallback is safe for concurrent use.
type Fallback[T any] struct {
	fn        func(ctx context.Context, err error) (T, error)
	on        func(error) bool
	calls     counter
	fallbacks counter
}

// FallbackStats counts calls and how many were answered by the fallback.
type FallbackStats struct{ Calls, Fallbacks uint64 }

// NewFallbackValue returns a fallback that answers v for errors on accepts
// (nil: every error except the caller's context ending).
func NewFallbackValue[T any](v T, on func(error) bool) *Fallback[T] {
	return &Fallback[T]{fn: func(context.Context, error) (T, error) { return v, nil }, on: on}
}

// NewFallbackFunc returns a fallback that answers fn(ctx, err) for errors
// on accepts (nil: every error except the caller's context ending).
func NewFallbackFunc[T any](fn func(ctx context.Context, err error) (T, error), on func(error) bool) (*Fallback[T], error) {
	if fn == nil {
		return nil, configError("fallback: nil function")
	}
	return &Fallback[T]{fn: fn, on: on}, nil
}

// Execute runs fn, and the fallback if fn fails with an accepted error.
func (f *Fallback[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if f == nil || f.fn == nil {
		return zero, notMade("fallback", "NewFallbackValue or NewFallbackFunc")
	}
	if fn == nil {
		return zero, configError("fallback: nil function")
	}
	f.calls.add()
	v, err := fn(ctx)
	if err == nil || ctx.Err() != nil || (f.on != nil && !f.on(err)) {
		return v, err
	}
	f.fallbacks.add()
	return f.fn(ctx, err)
}

// Stats returns the fallback's counters.
func (f *Fallback[T]) Stats() FallbackStats {
	return FallbackStats{Calls: f.calls.load(), Fallbacks: f.fallbacks.load()}
}

var (
	_ Policy[int] = (*Pipeline[int])(nil)
	_ Policy[int] = (*Timeout[int])(nil)
	_ Policy[int] = (*Fallback[int])(nil)
	_ Policy[int] = (*Retry[int])(nil)
	_ Policy[int] = (*CircuitBreaker[int])(nil)
	_ Policy[int] = guarded[int]{}
)

var (
	_ Guard = (*Bulkhead)(nil)
	_ Guard = (*AdaptiveThrottle)(nil)
	_ Guard = (*LoadShedder)(nil)
)
