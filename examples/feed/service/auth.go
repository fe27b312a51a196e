package service

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// ErrUnauthenticated is wrapped by [Tokens.User] errors.
var ErrUnauthenticated = errors.New("feed: unauthenticated")

// Tokens issues and checks the service's bearer tokens: JWTs (HS256,
// issuer and audience "feed", expiry required) from httpsec, whose
// subject is the user. A user acts only as the subject of their token:
// posts are written as that user, and only that user's home timeline and
// follows may be read or changed. Tokens is safe for concurrent use.
type Tokens struct {
	jwt *httpsec.Tokens
}

// NewTokens returns tokens signed with key (at least 32 bytes).
func NewTokens(key []byte) (*Tokens, error) {
	t, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "feed", Audience: "feed", Secret: key, Leeway: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Tokens{jwt: t}, nil
}

// Issue returns a token for user, valid for ttl.
func (t *Tokens) Issue(user string, ttl time.Duration) (string, error) {
	if !idRE.MatchString(user) {
		return "", fmt.Errorf("%w: user %q (want 1 to 32 of A-Z a-z 0-9 _ -)", ErrInvalidConfig, trunc(user))
	}
	return t.jwt.Issue(user, nil, ttl)
}

// User returns the user of r's token: the Authorization bearer token, or
// the access_token query parameter (RFC 6750), which a browser's
// EventSource must use as it cannot set headers.
func (t *Tokens) User(r *http.Request) (string, error) {
	sub, err := t.jwt.Subject(r)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if !idRE.MatchString(sub) {
		return "", fmt.Errorf("%w: subject %q is not a user ID", ErrUnauthenticated, trunc(sub))
	}
	return sub, nil
}
