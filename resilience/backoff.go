package resilience

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Jitter is how a [Backoff] randomises its delays, after the AWS
// Architecture Blog's "Exponential Backoff and Jitter" (Marc Brooker, 2015).
// Without jitter, clients that failed together retry together and collide
// again; with it, their retries spread out. The zero value is [JitterFull].
type Jitter int

const (
	// JitterFull sleeps uniformly in [0, min(cap, base·2^n)): the fewest
	// calls in the AWS study, and the default.
	JitterFull Jitter = iota
	// JitterNone sleeps exactly min(cap, base·2^n): clients in lock step.
	JitterNone
	// JitterEqual keeps half the exponential delay and randomises the other
	// half: never retries almost immediately, at the cost of more time.
	JitterEqual
	// JitterDecorrelated sleeps uniformly in [base, 3·previous), capped: it
	// grows from the last sleep rather than the attempt number.
	JitterDecorrelated
)

// String returns "full", "none", "equal" or "decorrelated".
func (j Jitter) String() string {
	switch j {
	case JitterFull:
		return "full"
	case JitterNone:
		return "none"
	case JitterEqual:
		return "equal"
	case JitterDecorrelated:
		return "decorrelated"
	}
	return fmt.Sprintf("Jitter(%d)", int(j))
}

// Backoff computes the delay before each retry: exponential growth from
// Base by Multiplier, capped at Max, randomised by Jitter. The zero value is
// 100 ms base, 10 s cap, multiplier 2, full jitter. A Backoff is a value; it
// is safe for concurrent use.
type Backoff struct {
	// Base is the first delay. Default 100 ms.
	Base time.Duration
	// Max caps every delay; it must be at least Base. Default 10 s (or Base
	// when Base is larger than 10 s and Max is not set).
	Max time.Duration
	// Multiplier is the growth factor per retry, at least 1. Default 2.
	Multiplier float64
	// Jitter is the randomisation. Default [JitterFull].
	Jitter Jitter
}

// withDefaults returns b with zero fields replaced by their defaults, or an
// error naming the bad field.
func (b Backoff) withDefaults() (Backoff, error) {
	baseNote := ""
	if b.Base == 0 {
		b.Base, baseNote = 100*time.Millisecond, " (the default)"
	}
	if b.Max == 0 {
		b.Max = max(10*time.Second, b.Base)
	}
	if b.Multiplier == 0 {
		b.Multiplier = 2
	}
	switch {
	case b.Base < 0:
		return b, configError("backoff Base must be positive, got %v", b.Base)
	case b.Max < 0:
		return b, configError("backoff Max must be positive, got %v", b.Max)
	case b.Max < b.Base:
		return b, configError("backoff Max %v is below Base %v%s", b.Max, b.Base, baseNote)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return b, configError("backoff Multiplier must be a finite number >= 1, got %v", b.Multiplier)
	case b.Jitter < JitterFull || b.Jitter > JitterDecorrelated:
		return b, configError("backoff Jitter %d is not one of none, full, equal, decorrelated", int(b.Jitter))
	}
	return b, nil
}

// Validate reports whether b (with its defaults filled in) is usable.
func (b Backoff) Validate() error {
	_, err := b.withDefaults()
	return err
}

// Delay returns the delay before retry number retry (1 for the first
// retry), given the previous delay (used by decorrelated jitter; 0 before
// the first retry) and u, a uniform random number in [0, 1). It is a pure
// function of its arguments, so simulations drive it with their own random
// stream. b must be valid (see [Backoff.Validate]); zero fields take their
// defaults.
func (b Backoff) Delay(retry int, prev time.Duration, u float64) time.Duration {
	b, _ = b.withDefaults()
	retry = max(retry, 1)
	capped := float64(b.Max)
	exp := math.Min(capped, float64(b.Base)*math.Pow(b.Multiplier, float64(retry-1)))
	var d float64
	switch b.Jitter {
	case JitterNone:
		d = exp
	case JitterEqual:
		d = exp/2 + u*exp/2
	case JitterDecorrelated:
		hi := 3 * float64(max(prev, b.Base))
		d = math.Min(capped, float64(b.Base)+u*(hi-float64(b.Base)))
	default: // JitterFull
		d = u * exp
	}
	return time.Duration(d)
}

// RetryAfterError carries a server's request to wait before retrying (an
// HTTP 429 or 503 with Retry-After). [Retry] waits at least After before the
// next attempt, and gives up if that is past its MaxElapsed.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

// Error returns the wrapped error's message with the requested wait.
func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ParseRetryAfter parses an HTTP Retry-After header value: a number of
// seconds or an HTTP date (RFC 9110, section 10.2.3), relative to now. It
// returns false for an empty or malformed value; a date in the past gives
// 0.
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 || secs > math.MaxInt64/int64(time.Second) {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// RetryAfterFromResponse turns an HTTP response that asks the client to
// come back later — 429 Too Many Requests or 503 Service Unavailable with
// a Retry-After header — into a [*RetryAfterError] wrapping err, so a
// [Retry] waits as the server asked. Other responses return err unchanged.
func RetryAfterFromResponse(resp *http.Response, err error, now time.Time) error {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return err
	}
	d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	if !ok {
		return err
	}
	if err == nil {
		err = fmt.Errorf("resilience: http status %d", resp.StatusCode)
	}
	return &RetryAfterError{Err: err, After: d}
}
