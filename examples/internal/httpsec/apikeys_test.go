package httpsec_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func newAPIKeys(t *testing.T) *httpsec.APIKeys {
	t.Helper()
	now := t0
	lim, err := ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{Now: func() time.Time { return now }},
		ratelimit.Limit{Events: 1, Per: time.Minute, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	k, err := httpsec.NewAPIKeys(httpsec.APIKeyOptions{
		Keys:    map[string]string{"acme": "acme-key-0123456789", "globex": "globex-key-0123456789"},
		Limiter: lim,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAPIKeys(t *testing.T) {
	var name string
	h := newAPIKeys(t).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name = httpsec.APIKeyName(r.Context())
	}))
	call := func(key string) *http.Response {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if key != "" {
			r.Header.Set(httpsec.APIKeyHeader, key)
		}
		return serve(h, r)
	}
	if p := problemOf(t, call(""), http.StatusUnauthorized); p.Code != "missing_api_key" || p.Field != "X-API-Key" {
		t.Errorf("no key: %+v", p)
	}
	p := problemOf(t, call("wrong-key-0123456789"), http.StatusUnauthorized)
	if p.Code != "invalid_api_key" || strings.Contains(p.Detail, "wrong-key") {
		t.Errorf("unknown key: %+v (must not echo the key)", p)
	}

	// Each key has its own budget of 2: acme's third request is refused,
	// globex's first is not.
	for i := range 2 {
		res := call("acme-key-0123456789")
		if res.StatusCode != http.StatusOK || name != "acme" {
			t.Fatalf("acme request %d: %d, name %q", i, res.StatusCode, name)
		}
		if res.Header.Get("RateLimit-Policy") != `"api-key";q=1;w=60` {
			t.Errorf("RateLimit-Policy %q", res.Header.Get("RateLimit-Policy"))
		}
	}
	res := call("acme-key-0123456789")
	problemOf(t, res, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") == "" || !strings.HasPrefix(res.Header.Get("RateLimit"), `"api-key";r=0;`) {
		t.Errorf("429 without its headers: %v", res.Header)
	}
	if res := call("globex-key-0123456789"); res.StatusCode != http.StatusOK || name != "globex" {
		t.Errorf("globex shares acme's budget: %d, name %q", res.StatusCode, name)
	}
}

func TestAPIKeysConfig(t *testing.T) {
	lim, err := ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, ratelimit.PerSecond(1))
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]httpsec.APIKeyOptions{
		"no keys":    {Limiter: lim},
		"no limiter": {Keys: map[string]string{"a": "0123456789abcdef"}},
		"short key":  {Keys: map[string]string{"a": "short"}, Limiter: lim},
		"bad name":   {Keys: map[string]string{"a b": "0123456789abcdef"}, Limiter: lim},
		"same key":   {Keys: map[string]string{"a": "0123456789abcdef", "b": "0123456789abcdef"}, Limiter: lim},
		"bad policy": {Keys: map[string]string{"a": "0123456789abcdef"}, Limiter: lim, Policy: "a b"},
	} {
		_, err := httpsec.NewAPIKeys(opts)
		if !errors.Is(err, httpsec.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}
