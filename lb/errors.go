package lb

import (
	"errors"
	"fmt"
)

// Errors returned by this package, testable with [errors.Is].
//
// Every configuration error wraps [ErrInvalidConfig] and, where one fits, a
// more precise sentinel ([ErrNoBackends], [ErrDuplicateBackend],
// [ErrInvalidWeight], [ErrInvalidCoord]).
var (
	// ErrInvalidConfig is wrapped by every error for a bad option or backend.
	ErrInvalidConfig = errors.New("lb: invalid configuration")
	// ErrNoBackends reports a balancer built over an empty backend list.
	ErrNoBackends = errors.New("no backends")
	// ErrDuplicateBackend reports two backends with the same address.
	ErrDuplicateBackend = errors.New("duplicate backend address")
	// ErrInvalidWeight reports a zero, negative, NaN or infinite weight.
	ErrInvalidWeight = errors.New("invalid weight")
	// ErrInvalidCoord reports a NaN, infinite or out-of-range coordinate.
	ErrInvalidCoord = errors.New("invalid coordinates")
	// ErrUnknownBackend reports an address that is not in the balancer.
	ErrUnknownBackend = errors.New("lb: unknown backend")
	// ErrNoHealthyBackend is returned by Pick when no backend is in
	// rotation (all removed, draining, unhealthy or ejected, and the panic
	// threshold is disabled), or when every backend in rotation was already
	// tried by this request.
	ErrNoHealthyBackend = errors.New("lb: no healthy backend available")
	// ErrAtCapacity is returned by Pick when every backend in rotation is at
	// its [Backend.Capacity].
	ErrAtCapacity = errors.New("lb: every backend is at capacity")
)

// configErr returns an error wrapping ErrInvalidConfig and, if not nil, the
// more precise sentinel kind.
func configErr(kind error, format string, args ...any) error {
	if kind == nil {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrInvalidConfig, kind}, args...)...)
}
