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

// metrics are one gateway's Prometheus metrics, on a registry of its own
// (no global state, so several gateways live in one process).
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	delivery    prometheus.Histogram
	connections prometheus.Gauge

	in, out, redelivered, dups, replayed atomic.Uint64
	liveDropped, fanWrite, fanRead       atomic.Uint64
	redisErrors, limited                 atomic.Uint64
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chat_http_requests_total", Help: "HTTP requests by route pattern and status.",
	}, []string{"route", "code"})
	m.delivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chat_delivery_latency_seconds",
		Help:    "From a message's storing to its first write to a recipient's connection.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "chat_connections", Help: "Open WebSocket and SSE connections."})
	m.reg.MustRegister(m.requests, m.delivery, m.connections,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpmetrics.Counter("chat_messages_in_total", "Messages stored (resends de-duplicated excluded).", &m.in),
		httpmetrics.Counter("chat_messages_out_total", "Messages written to connections, redeliveries included.", &m.out),
		httpmetrics.Counter("chat_redeliveries_total", "Messages written again because they stayed unacknowledged.", &m.redelivered),
		httpmetrics.Counter("chat_duplicates_suppressed_total", "Resent messages found by their client ID and not stored again (exactly-once mode).", &m.dups),
		httpmetrics.Counter("chat_acks_replayed_total", "Acknowledgements at or below the one recorded.", &m.replayed),
		httpmetrics.Counter("chat_live_dropped_total", "Live messages left to redelivery because a connection's queue was full.", &m.liveDropped),
		httpmetrics.Counter("chat_fanout_inbox_writes_total", "Inbox copies written (fan-out on write).", &m.fanWrite),
		httpmetrics.Counter("chat_fanout_read_messages_total", "Messages of groups fanned out at read time.", &m.fanRead),
		httpmetrics.Counter("chat_redis_errors_total", "Failed or short-circuited Redis calls.", &m.redisErrors),
		httpmetrics.Counter("chat_ratelimit_rejections_total", "Messages refused by a user or connection limit.", &m.limited),
		httpmetrics.BreakerState("chat_redis_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open.", s.breaker.State),
	)
	return m
}

func (m *metrics) observeDelivery(now time.Time, tsMillis int64) {
	if tsMillis > 0 {
		m.delivery.Observe(max(0, float64(now.UnixMilli()-tsMillis)/1000))
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// instrument counts requests by the mux pattern that served them.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return httpmetrics.Instrument(h, func(_ *http.Request, w *httpmetrics.Writer) {
		m.requests.WithLabelValues(w.Route(), strconv.Itoa(w.Status())).Inc()
	})
}
