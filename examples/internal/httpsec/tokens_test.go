package httpsec_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

var (
	secret    = []byte("0123456789abcdef0123456789abcdef")
	t0        = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	edPub, ed = func() (ed25519.PublicKey, ed25519.PrivateKey) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return pub, priv
	}()
)

// clock is a settable clock for token tests.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTokens(t testing.TB, opts httpsec.TokenOptions) *httpsec.Tokens {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = "test-issuer"
	}
	if opts.Audience == "" {
		opts.Audience = "test-api"
	}
	tok, err := httpsec.NewTokens(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func issue(t testing.TB, tok *httpsec.Tokens, sub string, roles []string, ttl time.Duration) string {
	t.Helper()
	s, err := tok.Issue(sub, roles, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokensRoundTrip(t *testing.T) {
	c := &clock{t0}
	for name, opts := range map[string]httpsec.TokenOptions{
		"HS256": {Secret: secret, Now: c.Now},
		"EdDSA": {PrivateKey: ed, Now: c.Now},
	} {
		t.Run(name, func(t *testing.T) {
			tok := newTokens(t, opts)
			s := issue(t, tok, "alice", []string{"admin", "user"}, time.Hour)
			if alg := strings.SplitN(s, ".", 2)[0]; alg == "" {
				t.Fatal("empty header")
			}
			id, err := tok.Verify(s)
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != "alice" || !slices.Equal(id.Roles, []string{"admin", "user"}) || !id.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("identity %+v", id)
			}
			if !id.HasRole("admin") || id.HasRole("root") {
				t.Errorf("HasRole wrong for %v", id.Roles)
			}
		})
	}
	// A verifier holding only the public key accepts the signer's tokens
	// and cannot sign.
	verifier := newTokens(t, httpsec.TokenOptions{PublicKey: edPub, Now: c.Now})
	if _, err := verifier.Verify(issue(t, newTokens(t, httpsec.TokenOptions{PrivateKey: ed, Now: c.Now}), "bob", nil, time.Minute)); err != nil {
		t.Errorf("public-key verifier: %v", err)
	}
	if _, err := verifier.Issue("bob", nil, time.Minute); !errors.Is(err, httpsec.ErrInvalidConfig) {
		t.Errorf("a verifier signed: %v", err)
	}
}

// Every bad token is refused with ErrInvalidToken and the golang-jwt error
// that names the check it failed.
func TestTokensRefused(t *testing.T) {
	c := &clock{t0}
	tok := newTokens(t, httpsec.TokenOptions{Secret: secret, Now: c.Now, Leeway: 10 * time.Second})
	good := issue(t, tok, "alice", []string{"user"}, time.Minute)
	other := func(opts httpsec.TokenOptions) string {
		opts.Now = c.Now
		return issue(t, newTokens(t, opts), "alice", []string{"admin"}, time.Minute)
	}
	// A token signed with HS256 using the public key as the secret: the
	// algorithm-confusion attack on a verifier that lets the token pick.
	confused, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "test-issuer", Audience: jwt.ClaimStrings{"test-api"}, Subject: "mallory",
		ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
	}).SignedString([]byte(edPub))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{
		Issuer: "test-issuer", Audience: jwt.ClaimStrings{"test-api"}, Subject: "mallory",
		ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "test-issuer", Audience: jwt.ClaimStrings{"test-api"}, Subject: "alice",
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	noSub, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "test-issuer", Audience: jwt.ClaimStrings{"test-api"}, ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]

	cases := []struct {
		name, token string
		at          time.Time
		want        error
	}{
		{"malformed", "not-a-token", t0, jwt.ErrTokenMalformed},
		{"empty", "", t0, jwt.ErrTokenMalformed},
		{"tampered payload", tampered, t0, jwt.ErrTokenMalformed},
		{"wrong secret", other(httpsec.TokenOptions{Issuer: "test-issuer", Audience: "test-api", Secret: []byte("another secret of at least 32 bytes!")}), t0, jwt.ErrTokenSignatureInvalid},
		{"EdDSA for an HS256 verifier", other(httpsec.TokenOptions{Issuer: "test-issuer", Audience: "test-api", PrivateKey: ed}), t0, jwt.ErrTokenSignatureInvalid},
		{"alg none", none, t0, jwt.ErrTokenSignatureInvalid},
		{"wrong audience", other(httpsec.TokenOptions{Issuer: "test-issuer", Audience: "another-api", Secret: secret}), t0, jwt.ErrTokenInvalidAudience},
		{"wrong issuer", other(httpsec.TokenOptions{Issuer: "someone-else", Audience: "test-api", Secret: secret}), t0, jwt.ErrTokenInvalidIssuer},
		{"expired beyond the leeway", good, t0.Add(time.Minute + 11*time.Second), jwt.ErrTokenExpired},
		{"not valid yet beyond the leeway", good, t0.Add(-11 * time.Second), jwt.ErrTokenNotValidYet},
		{"no expiry", noExp, t0, jwt.ErrTokenRequiredClaimMissing},
		{"no subject", noSub, t0, httpsec.ErrInvalidToken},
	}
	for _, tc := range cases {
		c.now = tc.at
		_, err := tok.Verify(tc.token)
		if !errors.Is(err, httpsec.ErrInvalidToken) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want ErrInvalidToken and %v", tc.name, err, tc.want)
		}
	}
	// Within the leeway, both ends are accepted.
	for _, at := range []time.Time{t0.Add(time.Minute + 9*time.Second), t0.Add(-9 * time.Second)} {
		c.now = at
		if _, err := tok.Verify(good); err != nil {
			t.Errorf("at %v, within the 10 s leeway: %v", at.Sub(t0), err)
		}
	}
	// An EdDSA verifier refuses the confused HS256 token.
	c.now = t0
	if _, err := newTokens(t, httpsec.TokenOptions{PublicKey: edPub, Now: c.Now}).Verify(confused); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("algorithm confusion: %v", err)
	}
}

func TestTokensConfig(t *testing.T) {
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]httpsec.TokenOptions{
		"no issuer":        {Audience: "a", Secret: secret},
		"no audience":      {Issuer: "i", Secret: secret},
		"no key":           {Issuer: "i", Audience: "a"},
		"short secret":     {Issuer: "i", Audience: "a", Secret: []byte("short")},
		"both kinds":       {Issuer: "i", Audience: "a", Secret: secret, PrivateKey: ed},
		"mismatched pair":  {Issuer: "i", Audience: "a", PrivateKey: otherPriv, PublicKey: edPub},
		"short public key": {Issuer: "i", Audience: "a", PublicKey: edPub[:10]},
		"negative leeway":  {Issuer: "i", Audience: "a", Secret: secret, Leeway: -time.Second},
	} {
		if _, err := httpsec.NewTokens(opts); !errors.Is(err, httpsec.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	tok := newTokens(t, httpsec.TokenOptions{Secret: secret})
	for name, f := range map[string]func() (string, error){
		"no subject":  func() (string, error) { return tok.Issue("", nil, time.Minute) },
		"no lifetime": func() (string, error) { return tok.Issue("a", nil, 0) },
		"empty role":  func() (string, error) { return tok.Issue("a", []string{""}, time.Minute) },
	} {
		if _, err := f(); !errors.Is(err, httpsec.ErrInvalidToken) {
			t.Errorf("Issue with %s: %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestRequire(t *testing.T) {
	c := &clock{t0}
	tok := newTokens(t, httpsec.TokenOptions{Secret: secret, Now: c.Now})
	var got httpsec.Identity
	h := tok.Require("admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ok bool
		if got, ok = httpsec.IdentityFrom(r.Context()); !ok {
			t.Error("no identity in the context")
		}
	}))
	call := func(auth string) *http.Response {
		r := httptest.NewRequest(http.MethodDelete, "/x", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return serve(h, r)
	}
	admin := issue(t, tok, "root", []string{"admin"}, time.Minute)
	if res := call("bearer " + admin); res.StatusCode != http.StatusOK || got.Subject != "root" {
		t.Fatalf("admin refused: %d, identity %+v", res.StatusCode, got)
	}

	res := call("")
	p := problemOf(t, res, http.StatusUnauthorized)
	if p.Code != "missing_token" || res.Header.Get("WWW-Authenticate") != `Bearer realm="test-api"` {
		t.Errorf("no token: %+v, %q", p, res.Header.Get("WWW-Authenticate"))
	}
	for _, auth := range []string{"Basic " + admin, "Bearer", "Bearer garbage", "Bearer " + admin + "x"} {
		res := call(auth)
		want := http.StatusUnauthorized
		p := problemOf(t, res, want)
		if auth == "Basic "+admin || auth == "Bearer" {
			continue // no bearer token: missing_token
		}
		if p.Code != "invalid_token" || res.Header.Get("WWW-Authenticate") != `Bearer realm="test-api", error="invalid_token"` {
			t.Errorf("%q: %+v, %q", auth, p, res.Header.Get("WWW-Authenticate"))
		}
	}
	c.now = t0.Add(2 * time.Minute)
	if p := problemOf(t, call("Bearer "+admin), http.StatusUnauthorized); !strings.Contains(p.Detail, "expired") {
		t.Errorf("expired: %+v does not say so", p)
	}
	c.now = t0

	got = httpsec.Identity{}
	res = call("Bearer " + issue(t, tok, "alice", []string{"user"}, time.Minute))
	p = problemOf(t, res, http.StatusForbidden)
	if p.Code != "forbidden" || !strings.Contains(p.Detail, `"admin"`) || res.Header.Get("WWW-Authenticate") != `Bearer realm="test-api", error="insufficient_scope"` || got.Subject != "" {
		t.Errorf("user on an admin route: %+v, %q, handler saw %+v", p, res.Header.Get("WWW-Authenticate"), got)
	}

	// Role "" admits any valid token.
	any := tok.Require("", ok)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+issue(t, tok, "alice", nil, time.Minute))
	if res := serve(any, r); res.StatusCode != http.StatusOK {
		t.Errorf("Require(\"\") refused a valid token: %d", res.StatusCode)
	}
}

// Subject reads the bearer token from the Authorization header or, with
// no such header, from access_token (a browser's WebSocket and
// EventSource); the header wins; a request with neither is ErrNoToken and
// a bad token ErrInvalidToken.
func TestSubject(t *testing.T) {
	c := &clock{t0}
	tok := newTokens(t, httpsec.TokenOptions{Secret: secret, Now: c.Now})
	alice := issue(t, tok, "alice", nil, time.Minute)
	bob := issue(t, tok, "bob", nil, time.Minute)
	for _, tc := range []struct {
		name, header, query, want string
		err                       error
	}{
		{name: "header", header: "Bearer " + alice, want: "alice"},
		{name: "scheme in any case", header: "bearer " + alice, want: "alice"},
		{name: "query", query: alice, want: "alice"},
		{name: "header wins", header: "Bearer " + alice, query: bob, want: "alice"},
		{name: "none", err: httpsec.ErrNoToken},
		{name: "another scheme", header: "Basic YWxpY2U6eA==", query: alice, err: httpsec.ErrNoToken},
		{name: "bad token", header: "Bearer " + alice + "x", err: httpsec.ErrInvalidToken},
		{name: "bad query token", query: "x.y.z", err: httpsec.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/?access_token="+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, err := tok.Subject(r)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Subject = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
