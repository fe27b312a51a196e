package service

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
)

// metrics are one instance's Prometheus metrics, on a registry of its own
// (no global state, so several instances live in one process).
type metrics struct {
	reg                          *prometheus.Registry
	requests                     *prometheus.CounterVec
	latency                      *prometheus.HistogramVec
	limited, created, collisions prometheus.Counter
	limitedN                     atomic.Uint64
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shortener_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "shortener_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"route"})
	m.limited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shortener_ratelimit_rejections_total", Help: "Creations refused by the rate limit (429).",
	})
	m.created = prometheus.NewCounter(prometheus.CounterOpts{Name: "shortener_urls_created_total", Help: "Short URLs created."})
	m.collisions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shortener_code_collisions_total", Help: "Generated codes that were taken and retried.",
	})
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.requests, m.latency, m.limited, m.created, m.collisions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		counter("shortener_cache_hits_total", "Lookups served by L1 or L2.", func() uint64 { return s.aside.Stats().Hits }),
		counter("shortener_cache_misses_total", "Lookups that read the store.", func() uint64 { return s.aside.Stats().Misses }),
		counter("shortener_cache_l1_hits_total", "Lookups served by the in-process L1.", s.cache.l1Hits.Load),
		counter("shortener_cache_l2_hits_total", "Lookups served by the Redis L2.", s.cache.l2Hits.Load),
		counter("shortener_cache_peer_evictions_total", "L1 entries dropped because another instance in this process deleted the code.", s.cache.busEvictions.Load),
		counter("shortener_redis_errors_total", "Failed or short-circuited Redis cache calls.", s.cache.l2Errors.Load),
		gauge("shortener_cache_hit_ratio", "Hits / lookups since start.", func() float64 { return s.aside.Stats().HitRatio() }),
		httpmetrics.BreakerState("shortener_redis_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open.", s.cache.breakerState),
		gauge("shortener_clicks_queued", "Clicks counted but not yet written to the store.", func() float64 {
			return float64(s.clicks.stats().Queued)
		}),
		counter("shortener_clicks_batches_total", "Click batches written to the store.", func() uint64 { return s.clicks.stats().Batches }),
	)
	return m
}

// deny counts a rate-limit rejection.
func (m *metrics) deny() {
	m.limited.Inc()
	m.limitedN.Add(1)
}

// method returns r's method, or "other" for unknown ones, so clients
// cannot grow the label space.
func method(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return r.Method
	}
	return "other"
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// instrument counts and times every request by the mux pattern that served
// it (never the raw path, whose codes would explode the label space).
func (m *metrics) instrument(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		httpmetrics.Instrument(mux, func(r *http.Request, w *httpmetrics.Writer) {
			m.requests.WithLabelValues(w.Route(), method(r), strconv.Itoa(w.Status())).Inc()
			m.latency.WithLabelValues(w.Route()).Observe(time.Since(start).Seconds())
		}).ServeHTTP(w, r)
	})
}
