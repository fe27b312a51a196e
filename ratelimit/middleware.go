package ratelimit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderStyle selects the rate-limit response headers of a [Middleware].
type HeaderStyle int

const (
	// HeadersIETF sends the IETF draft's structured fields
	// (draft-ietf-httpapi-ratelimit-headers):
	//
	//	RateLimit-Policy: "default";q=100;w=60
	//	RateLimit: "default";r=42;t=17
	//
	// q is the quota, w the window in seconds, r the remaining quota, t
	// the seconds until it is restored (or until a denied request may be
	// retried), pk an optional partition key.
	HeadersIETF HeaderStyle = iota
	// HeadersLegacy sends X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (seconds), as GitHub-era APIs do.
	HeadersLegacy
	// HeadersBoth sends both sets.
	HeadersBoth
	// HeadersNone sends only Retry-After on denials.
	HeadersNone
)

// MiddlewareOptions configure a [Middleware]. Only Limiter is required.
type MiddlewareOptions struct {
	// Limiter decides per key: a [Keyed] in memory or a redislimit.Limiter
	// shared by every instance. Required. Wrap each route's handler in its own
	// Middleware for per-route limits.
	Limiter KeyedLimiter
	// Key names the request's client. Default: the TCP peer's address by
	// a [ClientIP] trusting no proxy (IPv6 grouped by /64). Use
	// [ClientIP.Key] behind proxies, or a function returning the user or
	// API key for user-based limits. An error from Key goes to OnError.
	Key func(*http.Request) (string, error)
	// Cost is the number of events a request counts for. Default 1.
	Cost func(*http.Request) int
	// Policy names the policy in the IETF headers. Default "default";
	// with several limits the others are named Policy-1, Policy-2, ...
	// It must be an RFC 8941 token-safe string of letters, digits and
	// "-_.".
	Policy string
	// Headers selects the header set. Default HeadersIETF.
	Headers HeaderStyle
	// PartitionKey adds pk, a hash of the key (never the key itself),
	// to the RateLimit field, so clients can tell their partitions apart.
	PartitionKey bool
	// OnDenied, if set, is called for every denied request before the 429
	// is written.
	OnDenied func(r *http.Request, key string, d Decision)
	// OnError writes the response when the key cannot be found or the
	// limiter fails. Default: a problem+json 400 for a malformed
	// forwarding header, 500 otherwise.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// Middleware is net/http middleware that limits requests per key and
// answers the excess with 429 Too Many Requests, a Retry-After header,
// rate-limit headers and an RFC 9457 problem+json body. Allowed responses
// carry the rate-limit headers too, so well-behaved clients can slow down
// before they are refused.
//
// Guide (API Design → "Rate Limiting: Prevent abuse"; Security
// Considerations → "API Security: API key management, rate limiting").
//
// A Middleware is safe for concurrent use.
type Middleware struct {
	opts     MiddlewareOptions
	limits   []Limit
	policies []string
}

// NewMiddleware returns a middleware; see [MiddlewareOptions].
func NewMiddleware(opts MiddlewareOptions) (*Middleware, error) {
	if opts.Limiter == nil {
		return nil, fmt.Errorf("%w: middleware needs a Limiter", ErrInvalidConfig)
	}
	if opts.Headers < HeadersIETF || opts.Headers > HeadersNone {
		return nil, fmt.Errorf("%w: unknown header style %d", ErrInvalidConfig, int(opts.Headers))
	}
	if opts.Policy == "" {
		opts.Policy = "default"
	}
	for _, r := range opts.Policy {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return nil, fmt.Errorf("%w: policy name %q may hold only letters, digits, '-', '_' and '.'", ErrInvalidConfig, opts.Policy)
		}
	}
	if opts.Key == nil {
		ip, _ := NewClientIP(ClientIPOptions{}) // the zero options are valid
		opts.Key = ip.Key
	}
	if opts.OnError == nil {
		opts.OnError = defaultOnError
	}
	m := &Middleware{opts: opts}
	if ls, ok := opts.Limiter.(interface{ Limits() []Limit }); ok {
		m.limits = ls.Limits()
	}
	for i := range m.limits {
		name := opts.Policy
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		m.policies = append(m.policies, name)
	}
	return m, nil
}

// Handler returns next wrapped by the limit.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	if m.opts.Limiter == nil {
		err := errNotMade("Middleware", "NewMiddleware")
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeProblem(w, http.StatusInternalServerError, err.Error())
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := m.opts.Key(r)
		if err == nil && key == "" {
			err = ErrEmptyKey
		}
		if err != nil {
			if !errors.Is(err, ErrKeyFunc) && !errors.Is(err, ErrMalformedHeader) {
				err = fmt.Errorf("%w: %w", ErrKeyFunc, err)
			}
			m.opts.OnError(w, r, err)
			return
		}
		n := 1
		if m.opts.Cost != nil {
			n = m.opts.Cost(r)
		}
		d, err := m.opts.Limiter.Decide(r.Context(), key, n)
		if err != nil {
			m.opts.OnError(w, r, err)
			return
		}
		m.writeHeaders(w.Header(), key, d)
		if d.Allowed {
			next.ServeHTTP(w, r)
			return
		}
		if m.opts.OnDenied != nil {
			m.opts.OnDenied(r, key, d)
		}
		retry := ceilSeconds(d.RetryAfter)
		w.Header().Set("Retry-After", strconv.FormatInt(max(retry, 1), 10))
		writeProblem(w, http.StatusTooManyRequests,
			fmt.Sprintf("rate limit of %d per %v exceeded; retry in %ds", d.Limit.Events, d.Limit.Per, max(retry, 1)))
	})
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func (m *Middleware) writeHeaders(h http.Header, key string, d Decision) {
	reset := ceilSeconds(d.ResetAfter)
	if !d.Allowed {
		reset = max(ceilSeconds(d.RetryAfter), 1)
	}
	if m.opts.Headers == HeadersIETF || m.opts.Headers == HeadersBoth {
		limits, names := m.limits, m.policies
		if len(limits) == 0 {
			limits, names = []Limit{d.Limit}, []string{m.opts.Policy}
		}
		var pol strings.Builder
		name := names[0]
		for i, l := range limits {
			if i > 0 {
				pol.WriteString(", ")
			}
			fmt.Fprintf(&pol, "%q;q=%d;w=%d", names[i], l.Events, max(ceilSeconds(l.Per), 1))
			if l == d.Limit {
				name = names[i]
			}
		}
		h.Set("RateLimit-Policy", pol.String())
		rl := fmt.Sprintf("%q;r=%d;t=%d", name, max(d.Remaining, 0), reset)
		if m.opts.PartitionKey {
			sum := sha256.Sum256([]byte(key))
			rl += ";pk=:" + base64.StdEncoding.EncodeToString(sum[:12]) + ":"
		}
		h.Set("RateLimit", rl)
	}
	if m.opts.Headers == HeadersLegacy || m.opts.Headers == HeadersBoth {
		h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit.Events))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	}
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

func defaultOnError(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrMalformedHeader) {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	writeProblem(w, http.StatusInternalServerError, "rate limiter unavailable")
}
