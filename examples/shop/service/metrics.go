package service

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
	"github.com/sysdesign-go/sysdesign/examples/shop/order"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// metrics are the shop's Prometheus metrics, on a registry of its own (no
// global state): business metrics beside technical ones.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	orders        *prometheus.CounterVec
	revenue       prometheus.Counter
	compensations prometheus.Counter
	callbacks     *prometheus.CounterVec
	checkout      prometheus.Histogram
}

func newMetrics(s *Shop) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_http_requests_total", Help: "HTTP requests by route pattern and status.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "shop_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route"})
	m.orders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_orders_total", Help: "Orders that reached a final status (completed or failed), by who finished them.",
	}, []string{"status", "by"})
	m.revenue = prometheus.NewCounter(prometheus.CounterOpts{Name: "shop_revenue_cents_total", Help: "Money of completed orders, in cents."})
	m.compensations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shop_compensations_total", Help: "Orders whose saga compensated (released, refunded, cancelled) and failed.",
	})
	m.callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_payment_callbacks_total", Help: "Payment callbacks by status and source (provider, http, duplicate).",
	}, []string{"status", "source"})
	m.checkout = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "shop_checkout_duration_seconds", Help: "Checkout latency, the whole saga included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	m.reg.MustRegister(m.requests, m.latency, m.orders, m.revenue, m.compensations, m.callbacks, m.checkout,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shop_product_cache_hits_total", Help: "Product pages served from the cache."},
			func() float64 { return float64(s.catalog.CacheStats().Hits) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shop_payment_breaker_state", Help: "Payment circuit breaker: 0 closed, 1 half-open, 2 open."},
			func() float64 {
				switch s.pay.BreakerState() {
				case resilience.StateHalfOpen:
					return 1
				case resilience.StateOpen:
					return 2
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shop_orders_unfinished", Help: "Orders not yet completed or failed."},
			func() float64 { ids, _ := s.Unfinished(); return float64(len(ids)) }),
	)
	return m
}

// finished counts an order that reached a final status.
func (m *metrics) finished(o order.Order, by string) {
	m.orders.WithLabelValues(string(o.Status), by).Inc()
	switch o.Status {
	case order.StatusDone:
		m.revenue.Add(float64(o.Amount()))
	case order.StatusCancelled:
		m.compensations.Inc()
	}
}

// instrument counts and times each request under its route pattern.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		httpmetrics.Instrument(next, func(_ *http.Request, w *httpmetrics.Writer) {
			m.requests.WithLabelValues(w.Route(), strconv.Itoa(w.Status())).Inc()
			m.latency.WithLabelValues(w.Route()).Observe(time.Since(start).Seconds())
		}).ServeHTTP(w, r)
	})
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func slogString(k, v string) slog.Attr { return slog.String(k, v) }
