package resilience

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
)

// seq returns a deterministic "random" source cycling through us.
func seq(us ...float64) func() float64 {
	i := 0
	return func() float64 { u := us[i%len(us)]; i++; return u }
}

func TestFaultInjectorFunctions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		custom := errors.New("disk full")
		f, err := NewFaultInjector(FaultOptions{
			Name: "chaos", Delay: 100 * time.Millisecond, DelayProbability: 0.5,
			ErrorProbability: 0.2, Err: custom, AbortProbability: 0.1, AbortStatus: 429, HangProbability: 0.1,
			// delay draw, kind draw, per call
			Rand: seq(0.4, 0.05, 0.9, 0.2, 0.9, 0.35, 0.9, 0.9),
		})
		require.NoError(t, err)
		p := Guarded[int](f)
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
		assert.Equal(t, FaultStats{Requests: 4, Delayed: 1, Errors: 1, Aborts: 1, Hangs: 1}, f.Stats())
	})
}

func TestFaultInjectorSchedule(t *testing.T) {
	now := time.Unix(0, 0)
	active, err := Periodic(time.Minute, 10*time.Second)
	require.NoError(t, err)
	f, err := NewFaultInjector(FaultOptions{ErrorProbability: 1, Active: active, Now: func() time.Time { return now }})
	require.NoError(t, err)
	p := Guarded[int](f)
	_, err = p.Execute(t.Context(), ok)
	assert.ErrorIs(t, err, ErrInjected, "inside the active part of the period")
	now = now.Add(30 * time.Second)
	_, err = p.Execute(t.Context(), ok)
	assert.NoError(t, err, "outside it")
	_, err = Periodic(time.Second, 2*time.Second)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestFaultInjectorHTTP(t *testing.T) {
	f, err := NewFaultInjector(FaultOptions{HeaderControl: true, Sleep: func(context.Context, time.Duration) error { return nil }})
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
	code, _ = get(backend.Client(), map[string]string{HeaderFaultAbort: "418"})
	assert.Equal(t, 418, code, "the server-side middleware obeys the abort header")
	code, _ = get(backend.Client(), map[string]string{HeaderFaultDelay: "5"})
	assert.Equal(t, 200, code)
	assert.Equal(t, uint64(1), f.Stats().Delayed)

	// Client side: every request aborted with 503 without reaching the server.
	client, err := NewFaultInjector(FaultOptions{AbortProbability: 1})
	require.NoError(t, err)
	before := f.Stats().Requests
	code, _ = get(&http.Client{Transport: client.RoundTripper(backend.Client().Transport)}, nil)
	assert.Equal(t, 503, code)
	assert.Equal(t, before, f.Stats().Requests, "an aborted client request never reaches the server")

	errs, err := NewFaultInjector(FaultOptions{ErrorProbability: 1})
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", backend.URL, nil)
	_, err = (&http.Client{Transport: errs.RoundTripper(nil)}).Do(req)
	assert.ErrorIs(t, err, ErrInjected)
}

func TestFaultInjectorBadInput(t *testing.T) {
	for _, o := range []FaultOptions{
		{DelayProbability: 1.5}, {ErrorProbability: -0.1}, {ErrorProbability: 0.6, AbortProbability: 0.6},
		{Delay: -time.Second}, {AbortStatus: 42},
	} {
		_, err := NewFaultInjector(o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}
