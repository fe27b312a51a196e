package httpsec

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultContentSecurityPolicy is the policy of an API that serves no
// page: nothing may load, nothing may frame it, no form may post from it.
const DefaultContentSecurityPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure a [Middleware]. The zero value is the strictest
// setting: an API serving no page, called by no other origin, with 1 MiB
// bodies.
type Options struct {
	// ContentSecurityPolicy is sent on every response. Default
	// [DefaultContentSecurityPolicy]. A page that runs its own scripts and
	// opens a WebSocket back to its server needs, for example,
	// "default-src 'self'; connect-src 'self'; base-uri 'none';
	// form-action 'self'" ('self' in connect-src covers ws: and wss: to
	// the same host). "frame-ancestors 'none'" is added when the policy
	// has no frame-ancestors directive; one allowing any framing is
	// refused, as X-Frame-Options is always DENY.
	ContentSecurityPolicy string
	// ReferrerPolicy is the Referrer-Policy header. Default "no-referrer".
	ReferrerPolicy string
	// HSTSMaxAge is the max-age of Strict-Transport-Security, sent only on
	// responses to requests that came over TLS, directly or through a
	// trusted proxy saying X-Forwarded-Proto: https (a browser ignores it
	// over plain HTTP, and a proxy may serve that host over plain HTTP
	// too). Default one year; it must not be negative.
	HSTSMaxAge time.Duration
	// TrustedProxies are the networks of the proxies in front of the
	// service. Only from a peer in one of them are X-Forwarded-Proto
	// (HSTS) and X-Forwarded-Host (the service's own origin, for CORS)
	// believed. Default none.
	TrustedProxies []netip.Prefix
	// AllowedOrigins are the origins (scheme://host[:port]) whose pages may
	// call the service from a browser. A request with an Origin that is
	// neither listed nor the service's own is refused with 403 before it
	// reaches the handler. "*" allows any origin, and only without
	// AllowCredentials. Default none: same-origin only.
	AllowedOrigins []string
	// AllowedMethods are the methods a preflight may ask for. Default GET,
	// HEAD and POST.
	AllowedMethods []string
	// AllowedHeaders are the request headers a preflight may ask for
	// (case-insensitive). Default Authorization, Content-Type, X-API-Key
	// and X-Request-ID.
	AllowedHeaders []string
	// AllowCredentials lets the allowed origins send cookies and HTTP
	// authentication. Default false.
	AllowCredentials bool
	// MaxBodyBytes bounds request bodies: a longer one is answered with
	// 413 before the handler runs. Default 1 MiB; it must not be negative.
	MaxBodyBytes int64
}

// Middleware is the site-wide layer of secure defaults; see [Options] and
// [Middleware.Handler]. It is safe for concurrent use.
type Middleware struct {
	headers        [][2]string // sent on every response
	hsts           string
	trusted        []netip.Prefix
	origins        []string
	anyOrigin      bool
	credentials    bool
	methods        []string
	allowMethods   string
	allowHeaders   []string // lower case
	allowHeaderStr string
	maxBody        int64
}

// exposed are the response headers a cross-origin caller may read.
const exposed = "Location, Retry-After, RateLimit, RateLimit-Policy, X-Request-ID"

// preflightMaxAge is how long a browser may cache a preflight's answer.
const preflightMaxAge = "600"

// NewMiddleware returns the middleware opts describe, or an error wrapping
// [ErrInvalidConfig] naming the bad option.
func NewMiddleware(opts Options) (*Middleware, error) {
	csp := opts.ContentSecurityPolicy
	if csp == "" {
		csp = DefaultContentSecurityPolicy
	}
	if !headerSafe(csp) {
		return nil, fmt.Errorf("%w: content security policy %q holds a control character", ErrInvalidConfig, csp)
	}
	if fa, ok := directive(csp, "frame-ancestors"); !ok {
		csp = strings.TrimRight(strings.TrimSpace(csp), ";") + "; frame-ancestors 'none'"
	} else if fa != "'none'" {
		return nil, fmt.Errorf("%w: content security policy allows framing (frame-ancestors %s), but X-Frame-Options is DENY", ErrInvalidConfig, fa)
	}
	ref := opts.ReferrerPolicy
	if ref == "" {
		ref = "no-referrer"
	}
	switch ref {
	case "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
		"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url":
	default:
		return nil, fmt.Errorf("%w: referrer policy %q", ErrInvalidConfig, ref)
	}
	switch {
	case opts.HSTSMaxAge < 0:
		return nil, fmt.Errorf("%w: HSTS max-age %v is negative", ErrInvalidConfig, opts.HSTSMaxAge)
	case opts.HSTSMaxAge == 0:
		opts.HSTSMaxAge = 365 * 24 * time.Hour
	}
	switch {
	case opts.MaxBodyBytes < 0:
		return nil, fmt.Errorf("%w: body limit %d is negative", ErrInvalidConfig, opts.MaxBodyBytes)
	case opts.MaxBodyBytes == 0:
		opts.MaxBodyBytes = 1 << 20
	}
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: trusted proxy prefix %v", ErrInvalidConfig, p)
		}
	}
	m := &Middleware{
		headers: [][2]string{
			{"Content-Security-Policy", csp},
			{"X-Content-Type-Options", "nosniff"},
			{"X-Frame-Options", "DENY"},
			{"Referrer-Policy", ref},
		},
		hsts:        "max-age=" + strconv.FormatInt(int64(opts.HSTSMaxAge/time.Second), 10),
		trusted:     slices.Clone(opts.TrustedProxies),
		credentials: opts.AllowCredentials,
		maxBody:     opts.MaxBodyBytes,
	}
	for _, o := range opts.AllowedOrigins {
		if o == "*" {
			if opts.AllowCredentials {
				return nil, fmt.Errorf("%w: allowed origin \"*\" with credentials would let any site act as the user", ErrInvalidConfig)
			}
			m.anyOrigin = true
			continue
		}
		if canon, ok := canonicalOrigin(o); !ok || canon != o {
			return nil, fmt.Errorf("%w: allowed origin %q is not scheme://host[:port] in lower case with no path", ErrInvalidConfig, o)
		}
		m.origins = append(m.origins, o)
	}
	m.methods = opts.AllowedMethods
	if len(m.methods) == 0 {
		m.methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	for _, meth := range m.methods {
		if meth == "" || !headerSafe(meth) || strings.ContainsAny(meth, " ,") {
			return nil, fmt.Errorf("%w: allowed method %q", ErrInvalidConfig, meth)
		}
	}
	m.methods = slices.Clone(m.methods)
	m.allowMethods = strings.Join(m.methods, ", ")
	hdrs := opts.AllowedHeaders
	if len(hdrs) == 0 {
		hdrs = []string{"Authorization", "Content-Type", "X-API-Key", "X-Request-ID"}
	}
	for _, h := range hdrs {
		if h == "" || !headerSafe(h) || strings.ContainsAny(h, " ,") {
			return nil, fmt.Errorf("%w: allowed header %q", ErrInvalidConfig, h)
		}
		m.allowHeaders = append(m.allowHeaders, strings.ToLower(h))
	}
	m.allowHeaderStr = strings.Join(hdrs, ", ")
	return m, nil
}

// Handler returns next behind, in this order: a request id
// ([WithRequestID]), the security headers, the CORS policy and the body
// limit. Refusals are problem+json: 400 for a malformed X-Request-ID, 403
// for an origin or preflight the policy refuses (naming it), 413 for a
// body over the limit (naming the limit).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range m.headers {
			h.Set(kv[0], kv[1])
		}
		if m.overTLS(r) {
			h.Set("Strict-Transport-Security", m.hsts)
		}
		if !m.cors(w, r) {
			return
		}
		if !m.limitBody(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// overTLS reports whether r reached the service, or its trusted proxy,
// over TLS.
func (m *Middleware) overTLS(r *http.Request) bool {
	return r.TLS != nil || m.fromTrusted(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (m *Middleware) fromTrusted(r *http.Request) bool {
	if len(m.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range m.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ownOrigin is the origin the client addressed: the scheme and host of
// the request, or of a trusted proxy's X-Forwarded-Proto and -Host.
func (m *Middleware) ownOrigin(r *http.Request) string {
	scheme, host := "http", r.Host
	if m.overTLS(r) {
		scheme = "https"
	}
	if m.fromTrusted(r) {
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			host = fh
		}
	}
	o, _ := canonicalOrigin(scheme + "://" + host)
	return o
}

// cors applies the policy to r; false means it answered.
func (m *Middleware) cors(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	if len(m.origins) > 0 || m.anyOrigin {
		h.Add("Vary", "Origin")
	}
	origin, sent := r.Header["Origin"]
	if !sent {
		return true
	}
	o := ""
	if len(origin) == 1 {
		o = origin[0]
	}
	canon, ok := canonicalOrigin(o)
	allowed := ok && (m.anyOrigin || slices.Contains(m.origins, canon))
	if !allowed {
		if ok && canon == m.ownOrigin(r) {
			return true // same-origin: CORS does not apply
		}
		WriteProblem(w, &Problem{Status: http.StatusForbidden, Code: "origin_not_allowed", Field: "Origin",
			Detail: fmt.Sprintf("origin %q may not call this service from a browser", truncate(strings.Join(origin, ", ")))})
		return false
	}
	if m.anyOrigin {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", canon)
	}
	if m.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	reqMethod := r.Header.Get("Access-Control-Request-Method")
	if r.Method != http.MethodOptions || reqMethod == "" {
		h.Set("Access-Control-Expose-Headers", exposed)
		return true
	}
	// A preflight: answer it here, never pass it on.
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if !slices.Contains(m.methods, reqMethod) {
		WriteProblem(w, &Problem{Status: http.StatusForbidden, Code: "method_not_allowed", Field: "Access-Control-Request-Method",
			Detail: fmt.Sprintf("method %q is not allowed cross-origin; allowed: %s", truncate(reqMethod), m.allowMethods)})
		return false
	}
	for _, list := range r.Header.Values("Access-Control-Request-Headers") {
		for f := range strings.SplitSeq(list, ",") {
			f = strings.ToLower(strings.TrimSpace(f))
			if f != "" && !slices.Contains(m.allowHeaders, f) {
				WriteProblem(w, &Problem{Status: http.StatusForbidden, Code: "header_not_allowed", Field: "Access-Control-Request-Headers",
					Detail: fmt.Sprintf("header %q is not allowed cross-origin; allowed: %s", truncate(f), m.allowHeaderStr)})
				return false
			}
		}
	}
	h.Set("Access-Control-Allow-Methods", m.allowMethods)
	h.Set("Access-Control-Allow-Headers", m.allowHeaderStr)
	h.Set("Access-Control-Max-Age", preflightMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return false
}

// limitBody reads r's body, up to the limit, before the handler runs, so
// that a body over it is answered with 413 whatever the handler does with
// it; false means it answered.
func (m *Middleware) limitBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	tooLarge := func() bool {
		WriteProblem(w, &Problem{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Detail: fmt.Sprintf("request body over the limit of %d bytes", m.maxBody)})
		return false
	}
	if r.ContentLength > m.maxBody {
		return tooLarge()
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, m.maxBody+1))
	switch {
	case n > m.maxBody:
		return tooLarge()
	case err != nil:
		WriteProblem(w, &Problem{Status: http.StatusBadRequest, Code: "unreadable_body", Detail: "request body could not be read: " + err.Error()})
		return false
	}
	r.Body = io.NopCloser(&buf)
	return true
}

// canonicalOrigin returns o as a browser serialises an origin, and whether
// o is one: scheme "http" or "https", a host, an optional port, nothing
// else.
func canonicalOrigin(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "80" && scheme == "http" || port == "443" && scheme == "https" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", false
		}
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// directive returns the value of the CSP directive name in policy.
func directive(policy, name string) (string, bool) {
	for d := range strings.SplitSeq(policy, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && strings.EqualFold(f[0], name) {
			return strings.Join(f[1:], " "), true
		}
	}
	return "", false
}

// headerSafe reports whether s may be a header value: no control
// characters.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
