package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// HealthTarget is what a [HealthChecker] watches: a [Balancer] is one.
type HealthTarget interface {
	Backends() []Backend
	SetHealthy(addr string, healthy bool) error
}

// HealthCheckOptions configure a [HealthChecker]. The zero value probes every
// backend by TCP connect every 10s with a 1s timeout, marks it unhealthy
// after 3 failures in a row and healthy again after 2 successes (Envoy's
// defaults are the same thresholds).
type HealthCheckOptions struct {
	// Interval is the time between probe rounds. Zero means 10s; negative
	// is an error.
	Interval time.Duration
	// Timeout bounds one probe. Zero means 1s, or Interval if shorter; a
	// timeout longer than Interval, or negative, is an error.
	Timeout time.Duration
	// Jitter adds a random delay in [0, Jitter) to each interval, so that
	// many checkers do not probe in lockstep. Zero means none; negative or
	// longer than Interval is an error.
	Jitter time.Duration
	// UnhealthyThreshold is the number of failed probes in a row that take
	// a backend out of rotation. Zero means 3; negative is an error.
	UnhealthyThreshold int
	// HealthyThreshold is the number of passed probes in a row that bring
	// it back. Zero means 2; negative is an error.
	HealthyThreshold int
	// Path, if set, makes probes HTTP GETs of this path (it must start with
	// "/") on each backend; a 2xx status passes. Backends whose Addr has no
	// scheme are reached over http. Empty means a TCP connect probe.
	Path string
	// Client sends HTTP probes. Nil means a client of its own that does
	// not keep connections alive, so a probe always tests a new
	// connection.
	Client *http.Client
	// Probe, if not nil, replaces the TCP and HTTP probes: it returns nil
	// for a healthy backend. It must honour ctx: a probe still running at
	// twice the Timeout counts as failed, and its goroutine is left to
	// end when it returns.
	Probe func(ctx context.Context, b Backend) error
	// OnProbe, if not nil, is called after every probe with its error (nil
	// when it passed), from the probing goroutine.
	OnProbe func(addr string, err error)
	// Rand is the jitter's random source; nil means the runtime's.
	Rand *rand.Rand
}

// HealthChecker actively probes a balancer's backends (the guide, Health
// Check Integration: regular health checks remove unhealthy servers from
// rotation) and reports verdicts through SetHealthy, so every algorithm
// stops picking a backend that fails its probes and picks it again once
// it passes.
//
// Active checks find a dead or unreachable backend before any user request
// fails, at the cost of probe traffic and of only testing what the probe
// tests: a backend that answers /healthz but fails real requests passes.
// Pair it with passive outlier detection ([OutlierOptions]) to catch those.
//
// Backends start healthy; the first round runs when [HealthChecker.Start]
// is called. A HealthChecker is safe for concurrent use. Its zero value
// checks nothing: build one with [NewHealthChecker].
type HealthChecker struct {
	target HealthTarget
	opts   HealthCheckOptions
	rng    rng

	mu     sync.Mutex
	status map[string]*probeStatus // guarded by mu
	cancel context.CancelFunc      // guarded by mu
	done   chan struct{}           // guarded by mu
}

type probeStatus struct {
	passes, fails int // in a row
	healthy       bool
	lastErr       error
	probes        uint64
}

// ProbeStats is one backend's probe history.
type ProbeStats struct {
	Addr    string
	Healthy bool
	// Passes and Fails are the current run of passed or failed probes.
	Passes, Fails int
	// Probes counts every probe sent.
	Probes uint64
	// LastErr is the last probe's error, nil if it passed.
	LastErr error
}

// NewHealthChecker returns a checker of target's backends. It does nothing
// until Start.
func NewHealthChecker(target HealthTarget, opts HealthCheckOptions) (*HealthChecker, error) {
	if target == nil {
		return nil, configErr(nil, "health checker needs a target, got nil")
	}
	switch {
	case opts.Interval < 0:
		return nil, configErr(nil, "health check interval %v (want ≥ 0; 0 means 10s)", opts.Interval)
	case opts.Timeout < 0:
		return nil, configErr(nil, "health check timeout %v (want ≥ 0; 0 means 1s)", opts.Timeout)
	case opts.Jitter < 0:
		return nil, configErr(nil, "health check jitter %v (want ≥ 0)", opts.Jitter)
	case opts.UnhealthyThreshold < 0:
		return nil, configErr(nil, "unhealthy threshold %d (want ≥ 0; 0 means 3)", opts.UnhealthyThreshold)
	case opts.HealthyThreshold < 0:
		return nil, configErr(nil, "healthy threshold %d (want ≥ 0; 0 means 2)", opts.HealthyThreshold)
	case opts.Path != "" && !strings.HasPrefix(opts.Path, "/"):
		return nil, configErr(nil, "health check path %q (want an absolute path such as /healthz)", opts.Path)
	}
	if opts.Interval == 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Timeout == 0 {
		opts.Timeout = min(time.Second, opts.Interval)
	}
	if opts.Timeout > opts.Interval {
		return nil, configErr(nil, "health check timeout %v is longer than the interval %v", opts.Timeout, opts.Interval)
	}
	if opts.Jitter > opts.Interval {
		return nil, configErr(nil, "health check jitter %v is longer than the interval %v", opts.Jitter, opts.Interval)
	}
	if opts.UnhealthyThreshold == 0 {
		opts.UnhealthyThreshold = 3
	}
	if opts.HealthyThreshold == 0 {
		opts.HealthyThreshold = 2
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	return &HealthChecker{target: target, opts: opts, rng: rng{r: opts.Rand}, status: map[string]*probeStatus{}}, nil
}

// Start launches the probing goroutine: a round of probes at once, then
// one every Interval (plus jitter). It stops when Close is called or ctx
// is cancelled. Calling Start on a running checker does nothing; after
// Close, Start launches it again.
func (h *HealthChecker) Start(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cancel != nil || h.target == nil {
		return
	}
	ctx, h.cancel = context.WithCancel(ctx)
	h.done = make(chan struct{})
	go h.loop(ctx, h.done)
}

// Close stops the probing goroutine and waits for it and its probes to
// finish (at most twice the Timeout) or for ctx to be done; in the second
// case it returns an error wrapping ctx.Err(). It is safe to call more than
// once (a second call waits, under its own ctx, for the same goroutine),
// and before Start. It must not be called from OnProbe, nor from a
// callback (such as [Options.OnEvent]) that a verdict of the probing
// goroutine runs: Close would wait for the goroutine that is running it.
func (h *HealthChecker) Close(ctx context.Context) error {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("lb: health checker: the probing goroutine has not ended: %w", ctx.Err())
		}
		h.mu.Lock()
		if h.done == done { // not restarted meanwhile
			h.cancel, h.done = nil, nil
		}
		h.mu.Unlock()
	}
	if h.opts.Client != nil {
		h.opts.Client.CloseIdleConnections()
	}
	return nil
}

func (h *HealthChecker) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.CheckNow(ctx)
		wait := h.opts.Interval
		if h.opts.Jitter > 0 {
			wait += time.Duration(h.rng.uint64() % uint64(h.opts.Jitter))
		}
		t.Reset(wait)
	}
}

// CheckNow runs one round of probes on every backend, in parallel, and
// applies the thresholds. It returns when every probe has finished, or at
// twice the Timeout if a custom Probe ignores its context. Start
// calls it every Interval; call it directly to check on demand.
func (h *HealthChecker) CheckNow(ctx context.Context) {
	if h.target == nil {
		return // the zero checker
	}
	backends := h.target.Backends()
	type result struct {
		i   int
		err error
	}
	// Buffered, so that a probe that returns after it was given up on
	// still ends its goroutine.
	results := make(chan result, len(backends))
	for i, b := range backends {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
			defer cancel()
			results <- result{i, h.probe(pctx, b)}
		}()
	}
	errs := make([]error, len(backends))
	answered := make([]bool, len(backends))
	giveUp := time.NewTimer(2 * h.opts.Timeout)
	defer giveUp.Stop()
collect:
	for range backends {
		select {
		case r := <-results:
			errs[r.i], answered[r.i] = r.err, true
		case <-giveUp.C:
			// A probe that ignores its context must not stall every
			// later round, nor Close: it failed.
			for i, b := range backends {
				if !answered[i] {
					errs[i] = fmt.Errorf("lb: probe of %s still running at twice the timeout %v: %w", b.Addr, h.opts.Timeout, context.DeadlineExceeded)
				}
			}
			break collect
		}
	}
	if ctx.Err() != nil {
		return // cancelled probes say nothing about the backends
	}
	for i, b := range backends {
		if h.opts.OnProbe != nil {
			h.opts.OnProbe(b.Addr, errs[i])
		}
		if change, healthy := h.record(b.Addr, errs[i]); change {
			// The backend may have been removed meanwhile; that is fine.
			_ = h.target.SetHealthy(b.Addr, healthy)
		}
	}
	h.forget(backends)
}

// record applies one probe result and reports whether the verdict flips.
func (h *HealthChecker) record(addr string, err error) (change, healthy bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.status[addr]
	if st == nil {
		st = &probeStatus{healthy: true}
		h.status[addr] = st
	}
	st.probes++
	st.lastErr = err
	if err == nil {
		st.passes, st.fails = st.passes+1, 0
		if !st.healthy && st.passes >= h.opts.HealthyThreshold {
			st.healthy = true
			return true, true
		}
		return false, st.healthy
	}
	st.passes, st.fails = 0, st.fails+1
	if st.healthy && st.fails >= h.opts.UnhealthyThreshold {
		st.healthy = false
		return true, false
	}
	return false, st.healthy
}

// forget drops the status of backends no longer in the target.
func (h *HealthChecker) forget(current []Backend) {
	keep := make(map[string]bool, len(current))
	for _, b := range current {
		keep[b.Addr] = true
	}
	h.mu.Lock()
	for addr := range h.status {
		if !keep[addr] {
			delete(h.status, addr)
		}
	}
	h.mu.Unlock()
}

// Stats returns every probed backend's history, in no particular order.
func (h *HealthChecker) Stats() []ProbeStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]ProbeStats, 0, len(h.status))
	for addr, st := range h.status {
		out = append(out, ProbeStats{Addr: addr, Healthy: st.healthy, Passes: st.passes, Fails: st.fails, Probes: st.probes, LastErr: st.lastErr})
	}
	return out
}

// errProbeStatus reports an HTTP probe's unexpected status.
var errProbeStatus = errors.New("lb: health check status")

func (h *HealthChecker) probe(ctx context.Context, b Backend) error {
	if h.opts.Probe != nil {
		return h.opts.Probe(ctx, b)
	}
	if h.opts.Path == "" {
		host := b.Addr
		if u, err := url.Parse(b.Addr); err == nil && u.Host != "" {
			host = u.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	u, err := backendURL(b.Addr)
	if err != nil {
		return err
	}
	target := *u
	target.Path, target.RawQuery = h.opts.Path, ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w %d from %s", errProbeStatus, resp.StatusCode, target.String())
	}
	return nil
}

// backendURL turns a backend address into a URL: "host:port" means
// http://host:port.
func backendURL(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("lb: backend address %q is not a URL or host:port: %w", addr, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("lb: backend address %q has no host", addr)
	}
	return u, nil
}
