package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// ProxyOptions configure a [Proxy]. The zero value proxies over
// http.DefaultTransport, passes the client's Host header through, hashes on
// the client IP, counts 5xx answers and transport errors as failures, and
// retries idempotent requests on one more backend.
type ProxyOptions struct {
	// Transport sends requests to backends. Nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Request builds the balancer's [Request] from an incoming request.
	// Nil means a request whose Key is the client's IP (from RemoteAddr),
	// for [IPHash], [RingHash] and [Maglev].
	Request func(r *http.Request) Request
	// Attempts is the most backends one request is tried on. A retry
	// happens only for idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT,
	// DELETE) whose body can be replayed, after a transport error, a
	// timeout, or a 502, 503 or 504 answer. Zero means 2; negative is an
	// error.
	Attempts int
	// Timeout bounds each attempt, the response body included. Zero means
	// no limit beyond the client's; negative is an error.
	Timeout time.Duration
	// IsFailure reports whether a backend's response counts as a failure
	// for the balancer. Nil means status ≥ 500.
	IsFailure func(resp *http.Response) bool
	// ErrorLog receives transport errors and responses whose body broke
	// off. Nil means they are discarded (they are counted in the
	// balancer's stats).
	ErrorLog *log.Logger
	// Now is the clock that times attempts; nil means time.Now.
	Now func() time.Time
	// RewriteHost sends the backend's address as the Host header instead
	// of the client's. By default the client's Host passes through, as
	// Envoy, Traefik and HAProxy do, so a backend that builds absolute
	// links or checks self-reference from the Host sees the name clients
	// use; set RewriteHost for backends that route on their own name
	// (virtual hosts that know only their internal address). The client's
	// Host is in X-Forwarded-Host either way.
	RewriteHost bool
}

// Proxy is an HTTP reverse proxy in front of a [Balancer], built on
// [httputil.ReverseProxy]. For each request it picks a backend and
// forwards the request with the client's Host header (see
// [ProxyOptions.RewriteHost]) and the X-Forwarded-* headers set as
// [httputil.ProxyRequest.SetXForwarded] sets them: X-Forwarded-For keeps
// the chain of proxies in front and appends the client's address,
// X-Forwarded-Host is the client's Host and X-Forwarded-Proto is "http" or
// "https". It reports the result (status, transport error, latency) back
// to the balancer, fails over to another backend for idempotent requests,
// and answers 503 Service Unavailable with a plain text body when no
// backend is available. A response whose body breaks off after its headers
// went out (the backend crashed or reset the connection, or
// [ProxyOptions.Timeout] fired) cannot be retried or answered any more: the
// client's response is aborted, and the balancer is told the request
// failed, so outlier detection ejects a backend that does it again. Pair
// it with a [HealthChecker] and [OutlierOptions] to route around dead and
// failing backends.
//
// A Proxy is safe for concurrent use. Build it with [NewProxy]: the zero
// value answers every request with 500 Internal Server Error.
type Proxy struct {
	b    *Balancer
	opts ProxyOptions
	rp   *httputil.ReverseProxy
	urls sync.Map // backend address → *url.URL
}

var _ http.Handler = (*Proxy)(nil)

// errRetryStatus makes ModifyResponse hand a retryable 5xx answer to the
// error handler instead of the client.
var errRetryStatus = errors.New("lb: retryable status")

type attemptKey struct{}

// attempt is one try of one request, shared with the ReverseProxy hooks
// through the request's context.
type attempt struct {
	target   *url.URL
	canRetry bool  // another attempt may follow
	err      error // transport error or errRetryStatus
	status   int
	failed   bool
	end      time.Time
	body     watchedBody
}

// watchedBody is a response body that records the error a read of it
// ends in: a body that breaks off after the headers went out (the backend
// crashed or reset the connection, or the attempt's Timeout fired) is a
// failed request, though its status said otherwise. ReverseProxy reads the
// body on the request's goroutine, so the attempt needs no lock.
type watchedBody struct {
	io.ReadCloser
	err error // the first read error other than io.EOF
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// NewProxy returns a reverse proxy over b.
func NewProxy(b *Balancer, opts ProxyOptions) (*Proxy, error) {
	if b == nil {
		return nil, configErr(nil, "proxy needs a balancer, got nil")
	}
	if opts.Attempts < 0 {
		return nil, configErr(nil, "proxy attempts %d (want ≥ 0; 0 means 2)", opts.Attempts)
	}
	if opts.Timeout < 0 {
		return nil, configErr(nil, "proxy timeout %v (want ≥ 0; 0 means none)", opts.Timeout)
	}
	if opts.Attempts == 0 {
		opts.Attempts = 2
	}
	if opts.IsFailure == nil {
		opts.IsFailure = func(resp *http.Response) bool { return resp.StatusCode >= 500 }
	}
	if opts.Request == nil {
		opts.Request = func(r *http.Request) Request { return Request{Key: clientIP(r)} }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Proxy{b: b, opts: opts}
	errorLog := opts.ErrorLog
	if errorLog == nil {
		// ReverseProxy would use the standard logger.
		errorLog = log.New(io.Discard, "", 0)
	}
	p.rp = &httputil.ReverseProxy{
		Transport: opts.Transport,
		ErrorLog:  errorLog,
		Rewrite: func(pr *httputil.ProxyRequest) {
			a := pr.In.Context().Value(attemptKey{}).(*attempt)
			pr.SetURL(a.target)
			if !p.opts.RewriteHost {
				pr.Out.Host = pr.In.Host
			}
			// Keep the chain of proxies in front of this one.
			if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
				pr.Out.Header["X-Forwarded-For"] = append([]string(nil), prior...)
			}
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			a := resp.Request.Context().Value(attemptKey{}).(*attempt)
			a.end, a.status = p.opts.Now(), resp.StatusCode
			a.failed = p.opts.IsFailure(resp)
			// A protocol switch hands the body over as the connection
			// itself (ReverseProxy needs its io.ReadWriteCloser): not
			// watched.
			if resp.StatusCode != http.StatusSwitchingProtocols {
				a.body.ReadCloser = resp.Body
				resp.Body = &a.body
			}
			if a.canRetry && retryableStatus(resp.StatusCode) {
				return errRetryStatus
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a := r.Context().Value(attemptKey{}).(*attempt)
			if a.end.IsZero() {
				a.end = p.opts.Now()
			}
			a.err, a.failed = err, true
			if a.canRetry {
				return // ServeHTTP tries another backend
			}
			if errors.Is(err, errRetryStatus) {
				http.Error(w, fmt.Sprintf("lb: backend answered %d", a.status), a.status)
				return
			}
			if p.opts.ErrorLog != nil {
				p.opts.ErrorLog.Printf("lb: proxy to %s: %v", a.target.Host, err)
			}
			status := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			http.Error(w, fmt.Sprintf("lb: backend %s failed: %v", a.target.Host, err), status)
		},
	}
	return p, nil
}

func retryableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// clientIP returns the host part of r.RemoteAddr.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (p *Proxy) url(addr string) (*url.URL, error) {
	if u, ok := p.urls.Load(addr); ok {
		return u.(*url.URL), nil
	}
	u, err := backendURL(addr)
	if err != nil {
		return nil, err
	}
	p.urls.Store(addr, u)
	return u, nil
}

// ServeHTTP proxies r to a backend.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.rp == nil {
		http.Error(w, "lb: Proxy used without NewProxy", http.StatusInternalServerError)
		return
	}
	req := p.opts.Request(r)
	replayable := r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
	attempts := 1
	if idempotent(r.Method) && replayable {
		attempts = p.opts.Attempts
	}
	for n := 1; n <= attempts; n++ {
		addr, retry := p.try(w, r, req, n, n < attempts)
		if !retry {
			return
		}
		req.Avoid = append(req.Avoid, addr)
	}
}

// try makes attempt n and reports whether another should follow, and which
// backend this one went to.
func (p *Proxy) try(w http.ResponseWriter, r *http.Request, req Request, n int, canRetry bool) (addr string, retry bool) {
	pick, err := p.b.Pick(r.Context(), req)
	if err != nil {
		if r.Context().Err() == nil {
			http.Error(w, "lb: no backend available: "+err.Error(), http.StatusServiceUnavailable)
		}
		return "", false
	}
	a := &attempt{canRetry: canRetry}
	start := p.opts.Now()
	// Done runs even if ReverseProxy aborts the handler with a panic
	// (http.ErrAbortHandler after a broken response body).
	defer func() {
		if a.body.err != nil {
			// The headers went out and the body broke off: ReverseProxy
			// aborts the client's response, and the backend failed.
			a.end, a.failed, a.err = p.opts.Now(), true, a.body.err
			if p.opts.ErrorLog != nil && r.Context().Err() == nil {
				p.opts.ErrorLog.Printf("lb: response body from %s broke off: %v", a.target.Host, a.body.err)
			}
		}
		if a.end.IsZero() {
			a.end = p.opts.Now()
		}
		res := Result{Latency: max(a.end.Sub(start), 1)}
		if a.failed && r.Context().Err() == nil { // a client that gave up says nothing of the backend
			res.Err = a.err
			if res.Err == nil {
				res.Err = fmt.Errorf("lb: backend %s answered %d", pick.Addr(), a.status)
			}
		}
		pick.Done(res)
	}()
	if a.target, err = p.url(pick.Addr()); err != nil {
		a.failed, a.err = true, err
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return "", false
	}
	ctx := context.WithValue(r.Context(), attemptKey{}, a)
	if p.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.Timeout)
		defer cancel()
	}
	out := r.WithContext(ctx)
	if n > 1 && r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			http.Error(w, "lb: cannot replay the request body: "+err.Error(), http.StatusBadGateway)
			return "", false
		}
		out.Body = body
	}
	p.rp.ServeHTTP(w, out)
	return pick.Addr(), a.err != nil && canRetry && r.Context().Err() == nil
}
