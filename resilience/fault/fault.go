package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
)

// ErrInjected marks errors produced on purpose by an [Injector].
var ErrInjected = errors.New("resilience: injected fault")

// Envoy's fault-injection filter headers, honoured by the HTTP middleware
// and RoundTripper when [Options].HeaderControl is set: a request
// carrying them gets exactly that fault, whatever the probabilities say.
const (
	// HeaderDelay asks for a delay in milliseconds.
	HeaderDelay = "X-Envoy-Fault-Delay-Request"
	// HeaderAbort asks for an abort with this HTTP status.
	HeaderAbort = "X-Envoy-Fault-Abort-Request"
)

// Options configure a [Injector]. The zero value injects
// nothing; set the probabilities of the faults wanted. Abort, error and
// hang are exclusive (their probabilities must sum to at most 1); a delay
// is drawn independently and comes first, as in Envoy.
type Options struct {
	// Name identifies the injector in errors. Default "".
	Name string
	// Delay is the latency added (Latency Monkey) with DelayProbability.
	Delay            time.Duration
	DelayProbability float64
	// ErrorProbability fails the call with Err (default [ErrInjected]); in
	// HTTP it fails the round trip (RoundTripper) or answers 500
	// (middleware).
	ErrorProbability float64
	Err              error
	// AbortProbability aborts with HTTP status AbortStatus (default 503):
	// a response in HTTP, a [*StatusError] for functions.
	AbortProbability float64
	AbortStatus      int
	// HangProbability blocks the call until the caller's context ends: the
	// dependency that never answers, which only a timeout survives.
	HangProbability float64
	// HeaderControl makes the HTTP wrappers obey [HeaderDelay] and
	// [HeaderAbort]. Default false.
	HeaderControl bool
	// Active, if set, turns faults on only when it returns true for the
	// current time: a scheduled game day (see [Periodic]). Default: always.
	Active func(now time.Time) bool
	// Now, Sleep and Rand are the clock, the context-aware sleep and the
	// random source (uniform in [0, 1), safe for concurrent use). Defaults
	// time.Now, a timer, math/rand/v2.Float64.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
}

// StatusError is an injected abort with an HTTP status, for calls that are
// not HTTP.
type StatusError struct{ Status int }

// Error returns "http status <n>".
func (e *StatusError) Error() string { return "http status " + strconv.Itoa(e.Status) }

// Periodic returns an Active schedule that is on for the first active of
// every period (counted from the Unix epoch): a dependency that flaps.
func Periodic(period, active time.Duration) (func(time.Time) bool, error) {
	if period <= 0 || active < 0 || active > period {
		return nil, configError("Periodic needs 0 <= active <= period and period > 0, got active %v, period %v", active, period)
	}
	return func(now time.Time) bool { return time.Duration(now.UnixNano()%int64(period)) < active }, nil
}

// Injector is chaos engineering in-process (the guide: "Chaos
// Engineering: Failure Injection, Chaos Monkey, Latency Monkey"): it adds
// latency, errors, aborts and hangs to calls, by probability, by request
// header, or on a schedule — Envoy's fault-injection filter for Go
// functions (resilience.Guarded), HTTP servers ([Injector.Middleware]) and
// HTTP clients ([Injector.RoundTripper]). Use it in tests and game
// days to prove that the other policies do their job.
//
// An Injector is safe for concurrent use; the zero value injects
// nothing. It is a [resilience.Guard].
type Injector struct {
	o Options

	requests, delayed, errorsN, aborts, hangs atomic.Uint64
}

// Stats counts what an injector did.
type Stats struct{ Requests, Delayed, Errors, Aborts, Hangs uint64 }

// NewInjector returns an injector configured by opts.
func NewInjector(opts Options) (*Injector, error) {
	for _, p := range []struct {
		name string
		v    float64
	}{{"DelayProbability", opts.DelayProbability}, {"ErrorProbability", opts.ErrorProbability}, {"AbortProbability", opts.AbortProbability}, {"HangProbability", opts.HangProbability}} {
		if !(p.v >= 0 && p.v <= 1) {
			return nil, configError("%s must be in [0, 1], got %v", p.name, p.v)
		}
	}
	// 1e-9 absorbs the rounding of decimal fractions (0.1+0.2+0.7); whether
	// a sum of exactly 1+1e-9 passes is immaterial.
	if s := opts.ErrorProbability + opts.AbortProbability + opts.HangProbability; s > 1+1e-9 {
		return nil, configError("error, abort and hang probabilities sum to %v > 1", s)
	}
	if opts.Delay < 0 {
		return nil, configError("Delay must not be negative, got %v", opts.Delay)
	}
	if opts.AbortStatus == 0 {
		opts.AbortStatus = http.StatusServiceUnavailable
	}
	if opts.AbortStatus < 100 || opts.AbortStatus > 599 {
		return nil, configError("AbortStatus must be an HTTP status in [100, 599], got %d", opts.AbortStatus)
	}
	if opts.Err == nil {
		opts.Err = ErrInjected
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	return &Injector{o: opts}, nil
}

type faultKind int

const (
	faultNone faultKind = iota
	faultError
	faultAbort
	faultHang
)

// decide draws this request's fault: a delay and one of the exclusive
// faults.
func (f *Injector) decide(h http.Header) (time.Duration, faultKind, int) {
	f.requests.Add(1)
	var delay time.Duration
	kind, status := faultNone, f.o.AbortStatus
	if h != nil && f.o.HeaderControl {
		// A delay of 0 is no fault whether or not ms > 0 admits it.
		if ms, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderDelay)), 10, 64); err == nil && ms > 0 && ms < 1<<31 {
			delay = time.Duration(ms) * time.Millisecond
		}
		if st, err := strconv.Atoi(strings.TrimSpace(h.Get(HeaderAbort))); err == nil && st >= 100 && st <= 599 {
			kind, status = faultAbort, st
		}
		if delay > 0 || kind != faultNone {
			f.count(delay, kind)
			return delay, kind, status
		}
	}
	if f.o.Active != nil && !f.o.Active(f.o.Now()) {
		return 0, faultNone, 0
	}
	if f.o.DelayProbability > 0 && f.o.Rand() < f.o.DelayProbability {
		delay = f.o.Delay
	}
	if f.o.ErrorProbability+f.o.AbortProbability+f.o.HangProbability > 0 {
		switch u := f.o.Rand(); {
		case u < f.o.AbortProbability:
			kind = faultAbort
		case u < f.o.AbortProbability+f.o.ErrorProbability:
			kind = faultError
		case u < f.o.AbortProbability+f.o.ErrorProbability+f.o.HangProbability:
			kind = faultHang
		}
	}
	f.count(delay, kind)
	return delay, kind, status
}

func (f *Injector) count(delay time.Duration, kind faultKind) {
	if delay > 0 {
		f.delayed.Add(1)
	}
	switch kind {
	case faultError:
		f.errorsN.Add(1)
	case faultAbort:
		f.aborts.Add(1)
	case faultHang:
		f.hangs.Add(1)
	}
}

// Enter injects this call's fault: it sleeps the delay, then returns a
// [*resilience.PolicyError] wrapping [ErrInjected] and the injected error (Err, a
// [*StatusError], or the context's error after a hang), or lets the call
// through.
func (f *Injector) Enter(ctx context.Context) (resilience.Permit, error) {
	delay, kind, status := f.decide(nil)
	if delay > 0 {
		if err := f.o.Sleep(ctx, delay); err != nil {
			return resilience.Permit{}, err
		}
	}
	switch kind {
	case faultError:
		return resilience.Permit{}, rejected(f.o.Name, f.o.Err)
	case faultAbort:
		return resilience.Permit{}, rejected(f.o.Name, &StatusError{Status: status})
	case faultHang:
		<-ctx.Done()
		return resilience.Permit{}, rejected(f.o.Name, context.Cause(ctx))
	}
	now := time.Now
	if f.o.Now != nil {
		now = f.o.Now
	}
	return resilience.Permit{Start: now(), Ctx: ctx}, nil
}

// Exit does nothing: an injector does not learn from outcomes.
func (f *Injector) Exit(resilience.Permit, error) {}

// Middleware injects faults in front of an HTTP handler: delays, aborts
// (the status), errors (500) and hangs (no answer until the client gives
// up).
func (f *Injector) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delay, kind, status := f.decide(r.Header)
		if delay > 0 {
			if err := f.o.Sleep(r.Context(), delay); err != nil {
				return
			}
		}
		switch kind {
		case faultAbort:
			http.Error(w, "fault injected", status)
		case faultError:
			http.Error(w, "fault injected", http.StatusInternalServerError)
		case faultHang:
			<-r.Context().Done()
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// RoundTripper injects faults into an HTTP client: delays, aborts (a
// synthesised response with the status), errors (the round trip fails with
// a [*resilience.PolicyError] wrapping [ErrInjected]) and hangs (until the request's
// context ends). next nil means http.DefaultTransport.
func (f *Injector) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		delay, kind, status := f.decide(r.Header)
		if delay > 0 {
			if err := f.o.Sleep(r.Context(), delay); err != nil {
				return nil, err
			}
		}
		switch kind {
		case faultAbort:
			body := fmt.Sprintf("fault injected: %d %s\n", status, http.StatusText(status))
			return &http.Response{
				Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
				Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r,
			}, nil
		case faultError:
			return nil, rejected(f.o.Name, f.o.Err)
		case faultHang:
			<-r.Context().Done()
			return nil, rejected(f.o.Name, context.Cause(r.Context()))
		}
		return next.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Stats counts the faults injected so far.
func (f *Injector) Stats() Stats {
	return Stats{Requests: f.requests.Load(), Delayed: f.delayed.Load(), Errors: f.errorsN.Load(), Aborts: f.aborts.Load(), Hangs: f.hangs.Load()}
}

// configError returns an error wrapping resilience.ErrInvalidConfig that
// names the bad value.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: fault "+format, append([]any{resilience.ErrInvalidConfig}, args...)...)
}

// rejected is the error of an injected fault: a *resilience.PolicyError
// wrapping ErrInjected and cause.
func rejected(name string, cause error) error {
	return &resilience.PolicyError{Policy: "fault", Name: name, Kind: ErrInjected, Cause: cause}
}

// sleep waits d (the injector sleeps only positive delays) or until ctx
// is done, returning ctx's cause then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

var _ resilience.Guard = (*Injector)(nil)
