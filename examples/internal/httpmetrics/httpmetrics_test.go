package httpmetrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysdesign-go/sysdesign/resilience"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
)

type key struct{}

// copying stands for a middleware that hands the next handler a copy of
// the request, as a request-ID middleware does.
func copying(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, 1)))
	})
}

func TestInstrument(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {})
	for _, c := range []struct {
		name   string
		wrap   func(http.Handler) http.Handler
		method string
		path   string
		route  string
		status int
	}{
		{"mux alone", func(h http.Handler) http.Handler { return h }, "GET", "/items/7", "GET /items/{id}", 200},
		{"behind a copying middleware", func(h http.Handler) http.Handler { return copying(httpmetrics.Routes(h)) }, "GET", "/items/7", "GET /items/{id}", 200},
		{"a copying middleware without Routes hides the pattern", copying, "POST", "/items", "none", 201},
		{"nothing written", func(h http.Handler) http.Handler { return h }, "GET", "/empty", "GET /empty", 200},
		{"no route", func(h http.Handler) http.Handler { return copying(httpmetrics.Routes(h)) }, "GET", "/nope", "none", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			var route string
			var status int
			h := httpmetrics.Instrument(c.wrap(mux), func(r *http.Request, w *httpmetrics.Writer) { route, status = w.Route(), w.Status() })
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
			if route != c.route || status != c.status {
				t.Errorf("route %q status %d, want %q %d", route, status, c.route, c.status)
			}
			if rec.Code != c.status {
				t.Errorf("the client got %d, want %d", rec.Code, c.status)
			}
		})
	}
}

func TestCounter(t *testing.T) {
	var v atomic.Uint64
	reg := prometheus.NewRegistry()
	reg.MustRegister(httpmetrics.Counter("c_total", "h", &v))
	v.Add(3)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v, %d families", err, len(mfs))
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 3 || mfs[0].GetName() != "c_total" || mfs[0].GetHelp() != "h" {
		t.Errorf("%s %q = %v, want c_total \"h\" = 3", mfs[0].GetName(), mfs[0].GetHelp(), got)
	}
}

func TestBreakerState(t *testing.T) {
	for st, want := range map[resilience.State]float64{resilience.StateClosed: 0, resilience.StateHalfOpen: 1, resilience.StateOpen: 2} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(httpmetrics.BreakerState("b", "h", func() resilience.State { return st }))
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 {
			t.Fatalf("gather: %v, %d families", err, len(mfs))
		}
		if got := mfs[0].GetMetric()[0].GetGauge().GetValue(); got != want {
			t.Errorf("%v: gauge %v, want %v", st, got, want)
		}
	}
}
