package service

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
)

// metrics are one instance's Prometheus metrics, on a registry of its own
// (no global state, so several instances live in one process).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	visible  prometheus.Histogram
	homeRead prometheus.Histogram

	posts, inserts, jobs, pushed, dead   atomic.Uint64
	pulled, stale, redisErrors, pageHits atomic.Uint64
	indexed, searchRefused               atomic.Uint64
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "feed_http_requests_total", Help: "HTTP requests by route pattern and status.",
	}, []string{"route", "code"})
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m.visible = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "feed_fanout_visible_seconds", Help: "From a post's storing to the end of its fan-out on write (visible to every pushed follower).", Buckets: buckets,
	})
	m.homeRead = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "feed_home_read_seconds", Help: "Home timeline reads, from request to response.", Buckets: buckets,
	})
	m.reg.MustRegister(m.requests, m.visible, m.homeRead,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpmetrics.Counter("feed_posts_total", "Posts stored.", &m.posts),
		httpmetrics.Counter("feed_timeline_inserts_total", "Post IDs pushed into home timelines (fan-out on write).", &m.inserts),
		httpmetrics.Counter("feed_fanout_jobs_total", "Fan-out jobs done.", &m.jobs),
		httpmetrics.Counter("feed_fanout_pushed_total", "Fan-out jobs that pushed to followers.", &m.pushed),
		httpmetrics.Counter("feed_fanout_dead_letters_total", "Fan-out jobs dead-lettered after their last attempt.", &m.dead),
		httpmetrics.Counter("feed_pulled_lists_total", "Followees' post lists merged at read time (fan-out on read).", &m.pulled),
		httpmetrics.Counter("feed_search_indexed_total", "Posts read from the post stream into the search index.", &m.indexed),
		httpmetrics.Counter("feed_search_refused_total", "Searches refused by the search bulkhead or cut by its timeout (503).", &m.searchRefused),
		httpmetrics.Counter("feed_page_cache_hits_total", "Home first pages served from the L1/L2 page cache.", &m.pageHits),
		httpmetrics.Counter("feed_stale_reads_total", "Home pages served stale while Redis was unavailable.", &m.stale),
		httpmetrics.Counter("feed_redis_errors_total", "Failed or short-circuited Redis calls.", &m.redisErrors),
		httpmetrics.BreakerState("feed_redis_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open.", s.breaker.State),
	)
	return m
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
