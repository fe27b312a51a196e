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
		{Delay: -time.Second}, {AbortStatus: 42},
	} {
		_, err := NewInjector(o)
		assert.ErrorIs(t, err, resilience.ErrInvalidConfig, "%+v", o)
	}
}
