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
	shed shedTicket   // the request a LoadShedder admitted, released by its Exit
}

// Guard is a policy that decides whether a call may run and learns from its
// outcome without looking at its result value: [Bulkhead],
// [AdaptiveThrottle], [LoadShedder], and in sub-packages fault.Injector
// and degrade.Switch. Because it
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
