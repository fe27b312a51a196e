// Package httpmetrics holds the Prometheus plumbing the example services
// share: a circuit breaker's state as a gauge, a counter kept in an atomic,
// and for request metrics the
// two labels they need: the status a handler wrote and the mux pattern that
// served the request (never the raw path, whose IDs would explode the
// label space), however many middlewares stand between the two.
//
//	h := httpmetrics.Instrument(sec.Handler(httpmetrics.Routes(mux)), func(r *http.Request, w *httpmetrics.Writer) {
//		requests.WithLabelValues(w.Route(), strconv.Itoa(w.Status())).Inc()
//	})
package httpmetrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysdesign-go/sysdesign/resilience"
)

// Writer records the status code a handler wrote and, through [Routes],
// the pattern of the route that served the request.
type Writer struct {
	http.ResponseWriter
	status int
	route  string
}

// WriteHeader records the first status code.
func (w *Writer) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records 200 if no status was written before.
func (w *Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped writer (for http.ResponseController).
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status returns the status code written: 200 if the handler wrote
// nothing.
func (w *Writer) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Route returns the pattern of the mux route that served the request, or
// "none" when no route matched.
func (w *Writer) Route() string {
	if w.route == "" {
		return "none"
	}
	return w.route
}

// Routes wraps a mux so that the pattern it matched reaches the [Writer]
// of [Instrument]: a middleware that copies the request (to add a value
// to its context) hands the mux a request Instrument never sees, so
// Instrument cannot read the pattern from its own.
func Routes(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		for w != nil {
			if mw, ok := w.(*Writer); ok {
				mw.route = r.Pattern
				return
			}
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				return
			}
			w = u.Unwrap()
		}
	})
}

// Instrument serves h with a [Writer] and calls done with the request and
// the Writer when h returns.
func Instrument(h http.Handler, done func(r *http.Request, w *Writer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw := &Writer{ResponseWriter: w}
		h.ServeHTTP(mw, r)
		if mw.route == "" {
			mw.route = r.Pattern // h was the mux itself
		}
		done(r, mw)
	})
}

// Counter is a counter read from v at each scrape, for counts a service
// keeps in its own atomics.
func Counter(name, help string, v *atomic.Uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
}

// BreakerState is a gauge of a circuit breaker's state read at each
// scrape: 0 closed, 1 half-open, 2 open (so an alert fires on > 0).
func BreakerState(name, help string, state func() resilience.State) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		switch state() {
		case resilience.StateHalfOpen:
			return 1
		case resilience.StateOpen:
			return 2
		}
		return 0
	})
}
