package resilience

import (
	"errors"
	"fmt"
)

// Sentinel errors, testable with errors.Is. Errors returned by a policy wrap
// one of these together with the underlying cause (see [PolicyError]).
var (
	// ErrInvalidConfig is wrapped by every constructor error for bad options.
	ErrInvalidConfig = errors.New("resilience: invalid configuration")
	// ErrOpen means a circuit breaker rejected the call without running it:
	// the breaker is open, or half-open with its probe calls in flight.
	ErrOpen = errors.New("resilience: circuit breaker is open")
	// ErrBulkheadFull means a bulkhead had no free slot and no room (or no
	// time) in its wait queue.
	ErrBulkheadFull = errors.New("resilience: bulkhead full")
	// ErrTimeout means a timeout policy cancelled the call.
	ErrTimeout = errors.New("resilience: timeout")
	// ErrRetriesExhausted means every attempt a retry policy allowed failed;
	// the last attempt's error is wrapped too.
	ErrRetriesExhausted = errors.New("resilience: retries exhausted")
	// ErrBudgetExhausted means a retry or hedge budget refused an extra
	// attempt; the error of the attempt that was not retried is wrapped too.
	ErrBudgetExhausted = errors.New("resilience: budget exhausted")
	// ErrThrottled means client-side adaptive throttling rejected the call
	// locally because the backend has been refusing requests.
	ErrThrottled = errors.New("resilience: throttled")
	// ErrShed means server-side load shedding rejected the request because
	// the concurrency limit was reached.
	ErrShed = errors.New("resilience: load shed")
)

// PolicyError is the error a policy returns when it rejects or gives up on
// a call. It names the policy and keeps both the package sentinel (Kind) and
// the underlying cause, so errors.Is reaches ErrOpen, ErrBulkheadFull, ...
// as well as the dependency's own error or context.DeadlineExceeded.
type PolicyError struct {
	// Policy is the kind of policy: "breaker", "bulkhead", "retry",
	// "timeout", "hedge", "throttle", "shed", "fault".
	Policy string
	// Name is the policy instance's name, if it has one.
	Name string
	// Kind is the package sentinel, e.g. [ErrOpen].
	Kind error
	// Cause is the underlying error, if any (the last attempt's error, the
	// context's error, gobreaker.ErrOpenState).
	Cause error
}

// Error formats as "resilience: <policy> <name>: <kind>: <cause>".
func (e *PolicyError) Error() string {
	kind := "rejected"
	if e.Kind != nil {
		kind = trimPkg(e.Kind.Error())
	}
	s := "resilience: " + e.Policy
	if e.Name != "" {
		s += " " + fmt.Sprintf("%q", e.Name)
	}
	s += ": " + kind
	if e.Cause != nil && trimPkg(e.Cause.Error()) != kind {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *PolicyError) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	return out
}

func trimPkg(s string) string {
	const p = "resilience: "
	// > rather than >=: the bare prefix stays itself; no error says only that.
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func rejected(policy, name string, kind, cause error) error {
	return &PolicyError{Policy: policy, Name: name, Kind: kind, Cause: cause}
}

// notMade is the error of a call on a value its constructor did not make
// (the zero value or a nil pointer), which has no configuration to run on.
func notMade(what, constructor string) error {
	return configError("%s not made by %s", what, constructor)
}

// configError returns an error wrapping ErrInvalidConfig whose message
// starts with "resilience: " and names the bad value.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}
