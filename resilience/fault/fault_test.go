package fault

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/resilience"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ok(context.Context) (int, error) { return 1, nil }

func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

// An Injector is a Guard: with nothing to inject it lets every call
// through, pairs Enter with Exit and passes fn's result on; and it works
// from its zero value, which injects nothing.
func TestInjectorGuardContract(t *testing.T) {
	for name, g := range map[string]*Injector{"made": must(NewInjector(Options{})), "zero": {}} {
		for range 3 {
			p, err := g.Enter(t.Context())
			require.NoError(t, err, name)
			assert.Equal(t, t.Context(), p.Ctx, name)
			g.Exit(p, nil)
		}
		pol := resilience.Guarded[int](g)
		_, err := pol.Execute(t.Context(), nil)
		assert.ErrorIs(t, err, resilience.ErrInvalidConfig, name)
		v, err := pol.Execute(t.Context(), func(context.Context) (int, error) { return 9, nil })
		require.NoError(t, err, name)
		assert.Equal(t, 9, v, name)
	}
}

// An injector with nothing to inject, as a policy on the success path (it
// was measured among the policies of package resilience, under the same
// name).
func BenchmarkPolicy_Execute(b *testing.B) {
	b.Run("algo=fault-off", func(b *testing.B) {
		p := resilience.Guarded[int](must(NewInjector(Options{})))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = p.Execute(ctx, ok)
		}
	})
}

// seq returns a deterministic "random" source cycling through us.
func seq(us ...float64) func() float64 {
	i := 0
	return func() float64 { u := us[i%len(us)]; i++; return u }
}

func TestInjectorFunctions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		custom := errors.New("disk full")
		f, err := NewInjector(Options{
			Name: "chaos", Delay: 100 * time.Millisecond, DelayProbability: 0.5,
			ErrorProbability: 0.2, Err: custom, AbortProbability: 0.1, AbortStatus: 429, HangProbability: 0.1,
			// delay draw, kind draw, per call
			Rand: seq(0.4, 0.05, 0.9, 0.2, 0.9, 0.35, 0.9, 0.9),
		})
		require.NoError(t, err)
		p := resilience.Guarded[int](f)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()

		start := time.Now()
		_, err = p.Execute(ctx, ok) // delayed, then aborted (u=0.05 < 0.1)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, err, ErrInjected)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 429, se.Status)

		_, err = p.Execute(ctx, ok) // error (0.1 ≤ 0.2 < 0.3)
		assert.ErrorIs(t, err, custom)
		assert.ErrorIs(t, err, ErrInjected)

		start = time.Now()
		_, err = p.Execute(ctx, ok) // hang (0.3 ≤ 0.35 < 0.4) until the deadline
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, ErrInjected)
		assert.Equal(t, 900*time.Millisecond, time.Since(start))

		v, err := p.Execute(t.Context(), ok) // nothing
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.Equal(t, Stats{Requests: 4, Delayed: 1, Errors: 1, Aborts: 1, Hangs: 1}, f.Stats())
	})
}

func TestInjectorSchedule(t *testing.T) {
	now := time.Unix(0, 0)
	active, err := Periodic(time.Minute, 10*time.Second)
	require.NoError(t, err)
	f, err := NewInjector(Options{ErrorProbability: 1, Active: active, Now: func() time.Time { return now }})
	require.NoError(t, err)
	p := resilience.Guarded[int](f)
	_, err = p.Execute(t.Context(), ok)
	assert.ErrorIs(t, err, ErrInjected, "inside the active part of the period")
	now = now.Add(30 * time.Second)
	_, err = p.Execute(t.Context(), ok)
	assert.NoError(t, err, "outside it")
	_, err = Periodic(time.Second, 2*time.Second)
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
}

// Periodic is on in [k·period, k·period+active) and off at its end; an
// active of 0 is never on, one of the whole period always on; a period
// of 0 or a negative active is an error.
func TestPeriodicBounds(t *testing.T) {
	at := func(d time.Duration) time.Time { return time.Unix(0, int64(d)) }
	active := must(Periodic(time.Minute, 10*time.Second))
	for d, want := range map[time.Duration]bool{
		0: true, 10*time.Second - 1: true, 10 * time.Second: false, time.Minute - 1: false,
		time.Minute: true, time.Minute + 10*time.Second: false,
	} {
		assert.Equal(t, want, active(at(d)), "at %v", d)
	}
	never := must(Periodic(time.Minute, 0))
	always := must(Periodic(time.Minute, time.Minute))
	for _, d := range []time.Duration{0, time.Second, time.Minute - 1} {
		assert.False(t, never(at(d)), "active 0 at %v", d)
		assert.True(t, always(at(d)), "active = period at %v", d)
	}
	for _, c := range [][2]time.Duration{{0, 0}, {-time.Second, 0}, {time.Second, -1}} {
		_, err := Periodic(c[0], c[1])
		assert.ErrorIs(t, err, resilience.ErrInvalidConfig, "period %v, active %v", c[0], c[1])
	}
}

// The fault headers are obeyed within their ranges — a delay of 1 ms to
// 2^31-1 ms, an abort status of 100 to 599 — and ignored outside them.
func TestInjectorHeaderBounds(t *testing.T) {
	var slept []time.Duration
	f := must(NewInjector(Options{HeaderControl: true, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}}))
	h := f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	serve := func(name, value string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(name, value)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, v := range []string{"0", "-5", "2147483648", "x"} {
		slept = nil
		assert.Equal(t, http.StatusTeapot, serve(HeaderDelay, v), "delay %q", v)
		assert.Empty(t, slept, "delay %q is ignored", v)
	}
	for v, want := range map[string]time.Duration{"1": time.Millisecond, "2147483647": 2147483647 * time.Millisecond} {
		slept = nil
		assert.Equal(t, http.StatusTeapot, serve(HeaderDelay, v), "delay %q", v)
		assert.Equal(t, []time.Duration{want}, slept, "delay %q", v)
	}
	for v, want := range map[string]int{"99": http.StatusTeapot, "100": 100, "599": 599, "600": http.StatusTeapot} {
		assert.Equal(t, want, serve(HeaderAbort, v), "abort %q", v)
	}
	assert.Equal(t, Stats{Requests: 10, Delayed: 2, Aborts: 2}, f.Stats())
}

// Each fault on its own is drawn when the draw u is below its
// probability, and not at u equal to it; the draws split [0, 1) as abort,
// error, hang.
func TestInjectorDraws(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	kindOf := func(o Options, u float64) string {
		o.Rand = func() float64 { return u }
		var delayed bool
		o.Sleep = func(context.Context, time.Duration) error { delayed = true; return nil }
		o.Delay = time.Second
		_, err := must(NewInjector(o)).Enter(gone)
		var se *StatusError
		switch {
		case err == nil && delayed:
			return "delay"
		case err == nil:
			return "none"
		case errors.As(err, &se):
			return "abort"
		case errors.Is(err, context.Canceled):
			return "hang"
		case errors.Is(err, ErrInjected):
			return "error"
		}
		return err.Error()
	}
	for _, c := range []struct {
		o    Options
		u    float64
		want string
	}{
		{Options{DelayProbability: 0.5}, 0.49, "delay"},
		{Options{DelayProbability: 0.5}, 0.5, "none"},
		{Options{ErrorProbability: 0.5}, 0.49, "error"},
		{Options{ErrorProbability: 0.5}, 0.5, "none"},
		{Options{AbortProbability: 0.5}, 0.49, "abort"},
		{Options{AbortProbability: 0.5}, 0.5, "none"},
		{Options{HangProbability: 0.5}, 0.49, "hang"},
		{Options{HangProbability: 0.5}, 0.5, "none"},
		{Options{AbortProbability: 0.2, ErrorProbability: 0.3, HangProbability: 0.4}, 0.19, "abort"},
		{Options{AbortProbability: 0.2, ErrorProbability: 0.3, HangProbability: 0.4}, 0.2, "error"},
		{Options{AbortProbability: 0.2, ErrorProbability: 0.3, HangProbability: 0.4}, 0.49, "error"},
		{Options{AbortProbability: 0.2, ErrorProbability: 0.3, HangProbability: 0.4}, 0.5, "hang"},
		{Options{AbortProbability: 0.2, ErrorProbability: 0.3, HangProbability: 0.4}, 0.89, "hang"},
		{Options{AbortProbability: 0.2, ErrorProbability: 0.3, HangProbability: 0.4}, 0.9, "none"},
	} {
		assert.Equal(t, c.want, kindOf(c.o, c.u), "%+v at u=%v", c.o, c.u)
	}
}

// A request carrying a fault header gets exactly that fault, whatever the
// probabilities say.
func TestInjectorHeaderOverridesProbabilities(t *testing.T) {
	f := must(NewInjector(Options{HeaderControl: true, ErrorProbability: 1, DelayProbability: 1, Delay: time.Hour,
		Sleep: func(_ context.Context, d time.Duration) error {
			assert.Contains(t, []time.Duration{5 * time.Millisecond, time.Hour}, d, "the header's delay, or the drawn one without the header")
			return nil
		}}))
	h := f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for hdr, want := range map[string]int{HeaderAbort: 429, HeaderDelay: http.StatusTeapot} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(hdr, map[string]string{HeaderAbort: "429", HeaderDelay: "5"}[hdr])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, want, w.Code, hdr)
	}
	assert.Equal(t, Stats{Requests: 2, Delayed: 1, Aborts: 1}, f.Stats())

	// A request without the headers gets the faults the probabilities draw.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Equal(t, Stats{Requests: 3, Delayed: 2, Errors: 1, Aborts: 1}, f.Stats())
}

// A delay the caller's context cuts short ends the request there: the
// handler is not run, the round trip returns the context's error.
func TestInjectorDelayCutShort(t *testing.T) {
	f := must(NewInjector(Options{DelayProbability: 1, Delay: time.Hour}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	h := f.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the handler ran after a cut delay") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	rt := f.RoundTripper(roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("the request went out after a cut delay")
		return nil, errors.New("unreachable")
	}))
	req := must(http.NewRequestWithContext(ctx, "GET", "http://example.invalid/", nil))
	_, err := rt.RoundTrip(req)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, Stats{Requests: 2, Delayed: 2}, f.Stats())
}

// The RoundTripper obeys the fault headers too, and with no transport
// given sends the request through http.DefaultTransport.
func TestInjectorRoundTripperHeadersAndDefault(t *testing.T) {
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	defer backend.Close()
	var slept []time.Duration
	f := must(NewInjector(Options{HeaderControl: true, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}}))
	c := &http.Client{Transport: f.RoundTripper(nil)}
	do := func(hdr, v string) int {
		req := must(http.NewRequestWithContext(t.Context(), "GET", backend.URL, nil))
		if hdr != "" {
			req.Header.Set(hdr, v)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusTeapot, do("", ""), "through the default transport")
	assert.Empty(t, slept)
	assert.Equal(t, http.StatusTeapot, do(HeaderDelay, "7"))
	assert.Equal(t, []time.Duration{7 * time.Millisecond}, slept)
	assert.Equal(t, 429, do(HeaderAbort, "429"))
	assert.Equal(t, []time.Duration{7 * time.Millisecond}, slept, "an abort alone sleeps nothing")
}

// The default sleep waits the delay, or returns the context's cause when
// it ends first.
func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		require.NoError(t, sleep(t.Context(), 3*time.Second))
		assert.Equal(t, 3*time.Second, time.Since(start))
		cause := errors.New("client left")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(time.Second, func() { cancel(cause) })
		start = time.Now()
		assert.Equal(t, cause, sleep(ctx, time.Hour))
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestInjectorHTTP(t *testing.T) {
	f, err := NewInjector(Options{HeaderControl: true, Sleep: func(context.Context, time.Duration) error { return nil }})
	require.NoError(t, err)
	backend := httptest.NewServer(f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})))
	defer backend.Close()

	get := func(c *http.Client, hdr map[string]string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", backend.URL, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(backend.Client(), nil)
	assert.Equal(t, 200, code)
	assert.Equal(t, "hello", body)
	code, _ = get(backend.Client(), map[string]string{HeaderAbort: "418"})
	assert.Equal(t, 418, code, "the server-side middleware obeys the abort header")
	code, _ = get(backend.Client(), map[string]string{HeaderDelay: "5"})
	assert.Equal(t, 200, code)
	assert.Equal(t, uint64(1), f.Stats().Delayed)

	// Client side: every request aborted with 503 without reaching the server.
	client, err := NewInjector(Options{AbortProbability: 1})
	require.NoError(t, err)
	before := f.Stats().Requests
	code, _ = get(&http.Client{Transport: client.RoundTripper(backend.Client().Transport)}, nil)
	assert.Equal(t, 503, code)
	assert.Equal(t, before, f.Stats().Requests, "an aborted client request never reaches the server")

	errs, err := NewInjector(Options{ErrorProbability: 1})
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", backend.URL, nil)
	_, err = (&http.Client{Transport: errs.RoundTripper(nil)}).Do(req)
	assert.ErrorIs(t, err, ErrInjected)
}

func TestInjectorBadInput(t *testing.T) {
	for _, o := range []Options{
		{DelayProbability: 1.5}, {ErrorProbability: -0.1}, {ErrorProbability: 0.6, AbortProbability: 0.6},
		{Delay: -time.Second}, {AbortStatus: 42}, {AbortStatus: 99}, {AbortStatus: 600},
		{ErrorProbability: 0.5, AbortProbability: 0.500000002}, {ErrorProbability: 0.6, HangProbability: 0.6}, {AbortProbability: 0.6, HangProbability: 0.6},
	} {
		_, err := NewInjector(o)
		assert.ErrorIs(t, err, resilience.ErrInvalidConfig, "%+v", o)
	}
	// The bounds are valid; so is a sum of probabilities that is 1 but
	// for the rounding of decimal fractions.
	for _, o := range []Options{
		{AbortStatus: 100}, {AbortStatus: 599}, {DelayProbability: 1, ErrorProbability: 1},
		{ErrorProbability: 0.5, AbortProbability: 0.5}, {ErrorProbability: 0.1, AbortProbability: 0.2, HangProbability: 0.7},
	} {
		_, err := NewInjector(o)
		assert.NoError(t, err, "%+v", o)
	}
	assert.Equal(t, "http status 429", (&StatusError{Status: 429}).Error())
}
