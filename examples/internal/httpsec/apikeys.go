package httpsec

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"

	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// APIKeyHeader is the request header that carries an API key.
const APIKeyHeader = "X-API-Key"

// APIKeyOptions configure [APIKeys]. Keys and Limiter are required.
type APIKeyOptions struct {
	// Keys maps each key's name — logged, audited and rate-limited by, not
	// secret — to the key itself, which is secret: at least 16
	// characters, never logged. A name is 1 to 64 characters from A-Z,
	// a-z, 0-9, "-", "_" and ".".
	Keys map[string]string
	// Limiter limits each key, by name, on its own: a ratelimit.Keyed in
	// one process, a redislimit.Limiter shared by every instance.
	Limiter ratelimit.KeyedLimiter
	// Policy names the limit in the RateLimit headers. Default "api-key".
	Policy string
}

// APIKeys admits requests bearing a known API key in [APIKeyHeader] and
// limits each key with its own budget, answering the excess with 429, the
// IETF RateLimit headers and problem+json ([ratelimit.Middleware]). It is
// safe for concurrent use.
type APIKeys struct {
	byHash map[[sha256.Size]byte]string // SHA-256 of a key → its name
	limit  *ratelimit.Middleware
}

type apiKeyName struct{}

// APIKeyName returns the name of the key [APIKeys] admitted the request of
// ctx with, or "".
func APIKeyName(ctx context.Context) string {
	n, _ := ctx.Value(apiKeyName{}).(string)
	return n
}

var errNoKeyName = errors.New("httpsec: no API key name in the request context")

// NewAPIKeys returns the key check and limits opts describe, or an error
// wrapping [ErrInvalidConfig] naming the bad option (never a key).
func NewAPIKeys(opts APIKeyOptions) (*APIKeys, error) {
	if len(opts.Keys) == 0 {
		return nil, fmt.Errorf("%w: no API keys", ErrInvalidConfig)
	}
	if opts.Limiter == nil {
		return nil, fmt.Errorf("%w: API keys need a Limiter", ErrInvalidConfig)
	}
	if opts.Policy == "" {
		opts.Policy = "api-key"
	}
	k := &APIKeys{byHash: make(map[[sha256.Size]byte]string, len(opts.Keys))}
	for name, key := range opts.Keys {
		if !validKeyName(name) {
			return nil, fmt.Errorf("%w: API key name %q (want 1 to 64 characters from A-Z, a-z, 0-9, '-', '_' and '.')", ErrInvalidConfig, truncate(name))
		}
		if len(key) < 16 || !headerSafe(key) {
			return nil, fmt.Errorf("%w: API key %q is shorter than 16 characters or holds a control character", ErrInvalidConfig, name)
		}
		sum := sha256.Sum256([]byte(key))
		if other, dup := k.byHash[sum]; dup {
			return nil, fmt.Errorf("%w: API keys %q and %q are the same key", ErrInvalidConfig, other, name)
		}
		k.byHash[sum] = name
	}
	var err error
	k.limit, err = ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: opts.Limiter, Policy: opts.Policy,
		Key: func(r *http.Request) (string, error) {
			if n := APIKeyName(r.Context()); n != "" {
				return n, nil
			}
			return "", errNoKeyName
		},
		OnError: func(w http.ResponseWriter, _ *http.Request, err error) {
			WriteProblem(w, &Problem{Status: http.StatusServiceUnavailable, Code: "rate_limiter_unavailable", Detail: "the API key's rate limit could not be checked; retry later"})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return k, nil
}

// Handler returns next behind the key check and the key's limit. A
// request without a key, or with one not known, gets 401; the key's name
// goes into the context ([APIKeyName]).
func (k *APIKeys) Handler(next http.Handler) http.Handler {
	limited := k.limit.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(APIKeyHeader)
		if key == "" {
			WriteProblem(w, &Problem{Status: http.StatusUnauthorized, Code: "missing_api_key", Field: APIKeyHeader,
				Detail: "this request needs an API key in the X-API-Key header"})
			return
		}
		name, ok := k.byHash[sha256.Sum256([]byte(key))]
		if !ok {
			WriteProblem(w, &Problem{Status: http.StatusUnauthorized, Code: "invalid_api_key", Field: APIKeyHeader,
				Detail: fmt.Sprintf("the API key in X-API-Key (%d characters) is not known", len(key))})
			return
		}
		limited.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiKeyName{}, name)))
	})
}

func validKeyName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
