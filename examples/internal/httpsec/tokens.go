package httpsec

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenOptions configure [Tokens]. Issuer, Audience and exactly one kind
// of key are required.
type TokenOptions struct {
	// Issuer is the iss claim: tokens are issued with it, and a token
	// with another is refused.
	Issuer string
	// Audience is the aud claim: tokens are issued for it, and a token
	// not for it is refused.
	Audience string
	// Secret selects HS256 with this key, which signs and verifies; at
	// least 32 bytes (RFC 7518 §3.2).
	Secret []byte
	// PrivateKey selects EdDSA (Ed25519): it signs, and its public half
	// verifies.
	PrivateKey ed25519.PrivateKey
	// PublicKey selects EdDSA for a service that only verifies. With
	// PrivateKey it must be PrivateKey's public half.
	PublicKey ed25519.PublicKey
	// Leeway is the clock skew tolerated on exp, nbf and iat between the
	// issuer's clock and this one. Default 0: none, so set it when tokens
	// come from another machine. It must not be negative.
	Leeway time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Tokens issues and verifies signed JWTs carrying a subject and roles. The
// signing method is pinned — a token signed with another, "none"
// included, is refused — and the issuer, audience, expiry (required) and
// not-before are checked. It is safe for concurrent use.
type Tokens struct {
	issuer, audience string
	method           jwt.SigningMethod
	signKey          any // nil when only verifying
	verifyKey        any
	keyFunc          jwt.Keyfunc
	parser           *jwt.Parser
	now              func() time.Time
}

// Identity is who a verified token says the caller is.
type Identity struct {
	// Subject is the sub claim: the user or program.
	Subject string
	// Roles are the roles the token grants.
	Roles []string
	// ExpiresAt is when the token expires.
	ExpiresAt time.Time
}

// HasRole reports whether the identity holds role.
func (id Identity) HasRole(role string) bool { return slices.Contains(id.Roles, role) }

type identityKey struct{}

// IdentityFrom returns the identity [Tokens.Require] verified for the
// request of ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// claims are the token's claims: the registered ones and roles.
type claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles,omitempty"`
}

// NewTokens returns Tokens as opts describe, or an error wrapping
// [ErrInvalidConfig] naming the bad option.
func NewTokens(opts TokenOptions) (*Tokens, error) {
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, fmt.Errorf("%w: tokens need an issuer and an audience (got %q and %q)", ErrInvalidConfig, opts.Issuer, opts.Audience)
	}
	if opts.Leeway < 0 {
		return nil, fmt.Errorf("%w: token leeway %v is negative", ErrInvalidConfig, opts.Leeway)
	}
	t := &Tokens{issuer: opts.Issuer, audience: opts.Audience, now: opts.Now}
	if t.now == nil {
		t.now = time.Now
	}
	switch {
	case opts.Secret != nil && (opts.PrivateKey != nil || opts.PublicKey != nil):
		return nil, fmt.Errorf("%w: tokens take a Secret (HS256) or Ed25519 keys (EdDSA), not both", ErrInvalidConfig)
	case opts.Secret != nil:
		if len(opts.Secret) < 32 {
			return nil, fmt.Errorf("%w: HS256 secret of %d bytes; it needs at least 32", ErrInvalidConfig, len(opts.Secret))
		}
		key := slices.Clone(opts.Secret)
		t.method, t.signKey, t.verifyKey = jwt.SigningMethodHS256, key, key
	case opts.PrivateKey != nil:
		if len(opts.PrivateKey) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: Ed25519 private key of %d bytes; want %d", ErrInvalidConfig, len(opts.PrivateKey), ed25519.PrivateKeySize)
		}
		pub := opts.PrivateKey.Public().(ed25519.PublicKey)
		if opts.PublicKey != nil && !pub.Equal(opts.PublicKey) {
			return nil, fmt.Errorf("%w: the Ed25519 public key is not the private key's", ErrInvalidConfig)
		}
		t.method, t.signKey, t.verifyKey = jwt.SigningMethodEdDSA, opts.PrivateKey, pub
	case opts.PublicKey != nil:
		if len(opts.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 public key of %d bytes; want %d", ErrInvalidConfig, len(opts.PublicKey), ed25519.PublicKeySize)
		}
		t.method, t.verifyKey = jwt.SigningMethodEdDSA, opts.PublicKey
	default:
		return nil, fmt.Errorf("%w: tokens need a Secret (HS256) or an Ed25519 key (EdDSA)", ErrInvalidConfig)
	}
	verifyKey := t.verifyKey
	t.keyFunc = func(*jwt.Token) (any, error) { return verifyKey, nil }
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{t.method.Alg()}),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(t.now),
	)
	return t, nil
}

// Issue returns a token for subject with roles, valid from now for ttl,
// for programs and tests that need one. It needs the signing key (a
// Secret or a PrivateKey).
func (t *Tokens) Issue(subject string, roles []string, ttl time.Duration) (string, error) {
	switch {
	case t.signKey == nil:
		return "", fmt.Errorf("%w: these tokens hold only a public key and cannot sign", ErrInvalidConfig)
	case subject == "":
		return "", fmt.Errorf("%w: a token needs a subject", ErrInvalidToken)
	case ttl <= 0:
		return "", fmt.Errorf("%w: token lifetime %v is not positive", ErrInvalidToken, ttl)
	}
	for _, r := range roles {
		if r == "" {
			return "", fmt.Errorf("%w: empty role in %q", ErrInvalidToken, roles)
		}
	}
	now := t.now().Truncate(time.Second)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: subject, Audience: jwt.ClaimStrings{t.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: roles,
	}
	s, err := jwt.NewWithClaims(t.method, c).SignedString(t.signKey)
	if err != nil {
		return "", fmt.Errorf("httpsec: sign token: %w", err)
	}
	return s, nil
}

// Verify returns the identity token carries, or an error wrapping
// [ErrInvalidToken] and the golang-jwt error of the check it failed
// (jwt.ErrTokenMalformed, jwt.ErrTokenSignatureInvalid,
// jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidIssuer,
// jwt.ErrTokenInvalidAudience, ...).
func (t *Tokens) Verify(token string) (Identity, error) {
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, t.keyFunc); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return Identity{Subject: c.Subject, Roles: c.Roles, ExpiresAt: c.ExpiresAt.Time}, nil
}

// Require returns next behind token authentication: a request must bear
// "Authorization: Bearer <token>" with a token that verifies and, unless
// role is "", grants role. The identity goes into the request's context
// ([IdentityFrom]). Refusals are problem+json with the WWW-Authenticate
// of RFC 6750: 401 without a token, 401 with error="invalid_token" for one
// that does not verify (the detail names the check), 403 with
// error="insufficient_scope" for one without the role.
func (t *Tokens) Require(role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+t.audience+`"`)
			WriteProblem(w, &Problem{Status: http.StatusUnauthorized, Code: "missing_token", Field: "Authorization",
				Detail: "this request needs an Authorization: Bearer token"})
			return
		}
		id, err := t.Verify(raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+t.audience+`", error="invalid_token"`)
			WriteProblem(w, &Problem{Status: http.StatusUnauthorized, Code: "invalid_token", Field: "Authorization",
				Detail: "the bearer token is not valid: " + reason(err)})
			return
		}
		if role != "" && !id.HasRole(role) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+t.audience+`", error="insufficient_scope"`)
			WriteProblem(w, &Problem{Status: http.StatusForbidden, Code: "forbidden",
				Detail: fmt.Sprintf("subject %q lacks the role %q", truncate(id.Subject), role)})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// Subject returns the verified subject of r's bearer token: the one in
// its "Authorization: Bearer" header or, without that header, its
// access_token query parameter (RFC 6750), which a browser's WebSocket and
// EventSource must use as they cannot set headers. A request with neither
// gets [ErrNoToken]; a token that does not verify, [Tokens.Verify]'s
// error.
func (t *Tokens) Subject(r *http.Request) (string, error) {
	raw, ok := bearer(r)
	switch {
	case ok:
	case r.Header.Get("Authorization") == "":
		raw = r.URL.Query().Get("access_token")
	default:
		raw = "" // another scheme
	}
	if raw == "" {
		return "", ErrNoToken
	}
	id, err := t.Verify(raw)
	if err != nil {
		return "", err
	}
	return id.Subject, nil
}

// bearer returns the token of r's "Authorization: Bearer" header; the
// scheme is case-insensitive (RFC 7235).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	return tok, ok && strings.EqualFold(scheme, "Bearer") && tok != ""
}

// reason names the check a token failed, for the client.
func reason(err error) string {
	for _, c := range []struct {
		err error
		why string
	}{
		{jwt.ErrTokenMalformed, "malformed"},
		{jwt.ErrTokenSignatureInvalid, "wrong signature"},
		{jwt.ErrTokenUnverifiable, "unverifiable (wrong signing method)"},
		{jwt.ErrTokenExpired, "expired"},
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenRequiredClaimMissing, "a required claim is missing"},
	} {
		if errors.Is(err, c.err) {
			return c.why
		}
	}
	return "invalid"
}
