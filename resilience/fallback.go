package resilience

import (
	"context"
	"reflect"
)

// FallbackOptions configure a [Fallback]: the answer it gives, a fixed
// Value or the result of Func, and the errors it answers.
type FallbackOptions[T any] struct {
	// Value is the answer to a failed call when Func is nil. Its zero
	// value is a valid answer.
	Value T
	// Func, if set, computes the answer from the call's context and error;
	// it may fail in turn. Default nil: answer Value. Value and Func are
	// two answers to one question: setting both is an error.
	Func func(ctx context.Context, err error) (T, error)
	// On reports whether an error is answered by the fallback. Default
	// nil: every error except the caller's context ending.
	On func(err error) bool
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

// NewFallback returns a fallback configured by opts, or an error wrapping
// [ErrInvalidConfig] if both Value (not its zero value) and Func are set,
// as only one of them could answer.
func NewFallback[T any](opts FallbackOptions[T]) (*Fallback[T], error) {
	fn := opts.Func
	if fn != nil && !reflect.ValueOf(&opts.Value).Elem().IsZero() {
		return nil, configError("fallback: Value %v and Func are both set; set one", opts.Value)
	}
	if fn == nil {
		v := opts.Value
		fn = func(context.Context, error) (T, error) { return v, nil }
	}
	return &Fallback[T]{fn: fn, on: opts.On}, nil
}

// Execute runs fn, and the fallback if fn fails with an accepted error.
func (f *Fallback[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if f == nil || f.fn == nil {
		return zero, notMade("fallback", "NewFallback")
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
