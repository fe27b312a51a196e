package consensus

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Role is what a [User] may do, as etcd's role-based access control grants
// it: each role includes the ones before it.
type Role int

const (
	// RoleReadOnly reads, lists and watches the keys under the user's
	// prefix, and reads the cluster's status.
	RoleReadOnly Role = iota + 1
	// RoleReadWrite also writes and deletes the keys under the user's
	// prefix, takes the locks named under it, and grants and renews
	// leases (and revokes one whose keys are all under the prefix).
	RoleReadWrite
	// RoleAdmin does everything, on every key: membership changes,
	// leadership transfer and backups as well.
	RoleAdmin
)

var roleNames = map[Role]string{RoleReadOnly: "read-only", RoleReadWrite: "read-write", RoleAdmin: "admin"}

func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// MarshalText implements encoding.TextMarshaler: "read-only",
// "read-write" or "admin".
func (r Role) MarshalText() ([]byte, error) {
	if s, ok := roleNames[r]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("%w: unknown role %d", ErrInvalidConfig, int(r))
}

// UnmarshalText implements encoding.TextUnmarshaler, so that a role table
// reads from JSON: "read-only", "read-write" or "admin".
func (r *Role) UnmarshalText(b []byte) error {
	for role, s := range roleNames {
		if string(b) == s {
			*r = role
			return nil
		}
	}
	return fmt.Errorf("%w: unknown role %q (want read-only, read-write or admin)", ErrInvalidConfig, b)
}

// minTokenLen is the shortest bearer token [NewAuth] accepts: 128 bits
// when the token is random hexadecimal or base64 of 16 bytes or more.
const minTokenLen = 16

// User is one identity of an [Auth] table. It reads from JSON, as
// {"name","token","expires","role","prefix"}.
type User struct {
	// Name identifies the user. A client that presents a TLS certificate
	// verified by the server (tls.Config.ClientCAs) authenticates as the
	// user named by its subject's common name, as etcd's client
	// certificate authentication does.
	Name string `json:"name"`
	// Token, if set, is a bearer token (Authorization: Bearer <token>,
	// at least 16 bytes) that authenticates as this user. Empty means the
	// user authenticates by certificate only.
	Token string `json:"token,omitempty"`
	// Expires, if set, is when the token stops being accepted.
	Expires time.Time `json:"expires,omitzero"`
	// Role is what the user may do. Required.
	Role Role `json:"role"`
	// Prefix limits a read-only or read-write user to the keys (and lock
	// names) that start with it. Empty means every key. An admin ignores
	// it.
	Prefix string `json:"prefix,omitempty"`
}

// Allows reports whether u may act with role need on key: u's role
// includes need, and an admin acts on any key, anyone else on the keys
// under its prefix.
func (u User) Allows(need Role, key string) bool {
	return u.Role >= need && (u.Role == RoleAdmin || strings.HasPrefix(key, u.Prefix))
}

// ForwardedUserHeader names the caller a node forwards a request for, when
// the caller authenticated with a client certificate that the node cannot
// forward: the node sends the request under its own certificate and this
// header. [Auth.Authenticate] honours it only from an admin (a node's
// certificate belongs to an admin user) and refuses it from anyone else.
// A caller with a bearer token is forwarded with its Authorization header
// instead, and authenticated again by the leader.
const ForwardedUserHeader = "X-Consensus-Forwarded-User"

// Auth is the authentication and role table of a [Handler] (and of the
// registry's): who may call it, by bearer token or client certificate, and
// with which [Role]. Make one with [NewAuth]. An Auth is safe for
// concurrent use.
type Auth struct {
	users  map[string]User // by name
	tokens []tokenEntry
}

type tokenEntry struct {
	sum  [sha256.Size]byte
	name string
}

// NewAuth returns the table of users. It fails with [ErrInvalidConfig] on
// an empty or repeated name, a repeated or short token, or an unknown
// role. Give every node of a cluster the same table: a follower forwards a
// caller's request to the leader, which authorizes it again.
func NewAuth(users ...User) (*Auth, error) {
	a := &Auth{users: map[string]User{}}
	seen := map[[sha256.Size]byte]string{}
	for _, u := range users {
		switch {
		case u.Name == "":
			return nil, fmt.Errorf("%w: auth: user with an empty name", ErrInvalidConfig)
		case a.users[u.Name].Name != "":
			return nil, fmt.Errorf("%w: auth: user %q listed twice", ErrInvalidConfig, u.Name)
		case u.Role < RoleReadOnly || u.Role > RoleAdmin:
			return nil, fmt.Errorf("%w: auth: user %q has unknown role %v", ErrInvalidConfig, u.Name, u.Role)
		case u.Token != "" && len(u.Token) < minTokenLen:
			return nil, fmt.Errorf("%w: auth: token of user %q is %d bytes, want at least %d", ErrInvalidConfig, u.Name, len(u.Token), minTokenLen)
		}
		a.users[u.Name] = u
		if u.Token == "" {
			continue
		}
		sum := sha256.Sum256([]byte(u.Token))
		if other, ok := seen[sum]; ok {
			return nil, fmt.Errorf("%w: auth: users %q and %q share a token", ErrInvalidConfig, other, u.Name)
		}
		seen[sum] = u.Name
		a.tokens = append(a.tokens, tokenEntry{sum: sum, name: u.Name})
	}
	return a, nil
}

// Authenticate returns the user r authenticates as: by its bearer token
// when it has an Authorization header, else by its verified client
// certificate. A request from an admin that carries [ForwardedUserHeader]
// authenticates as the named user. It fails with [ErrUnauthenticated] for
// a request with no credentials, a malformed Authorization header, an
// unknown or expired token, or a certificate of no user; with
// [ErrForbidden] for a forwarded identity from a non-admin. No error
// holds the token.
//
// A token is compared, as its SHA-256 digest, with every user's in
// constant time, so the time taken reveals neither which user nor how
// much of a token matched.
func (a *Auth) Authenticate(r *http.Request) (User, error) {
	u, err := a.caller(r)
	if err != nil {
		return User{}, err
	}
	fwd := r.Header.Get(ForwardedUserHeader)
	if fwd == "" {
		return u, nil
	}
	if u.Role != RoleAdmin {
		return User{}, fmt.Errorf("%w: user %q may not act for %q (only an admin forwards)", ErrForbidden, u.Name, fwd)
	}
	f, ok := a.users[fwd]
	if !ok {
		return User{}, fmt.Errorf("%w: forwarded user %q is unknown", ErrUnauthenticated, fwd)
	}
	return f, nil
}

func (a *Auth) caller(r *http.Request) (User, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return User{}, fmt.Errorf("%w: malformed Authorization header (want \"Bearer <token>\")", ErrUnauthenticated)
		}
		sum := sha256.Sum256([]byte(token))
		name := ""
		for _, e := range a.tokens {
			if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
				name = e.name
			}
		}
		if name == "" {
			return User{}, fmt.Errorf("%w: unknown bearer token", ErrUnauthenticated)
		}
		u := a.users[name]
		if !u.Expires.IsZero() && !time.Now().Before(u.Expires) {
			return User{}, fmt.Errorf("%w: the token of user %q expired at %v", ErrUnauthenticated, u.Name, u.Expires.UTC().Format(time.RFC3339))
		}
		return u, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if u, ok := a.users[cn]; ok {
			return u, nil
		}
		return User{}, fmt.Errorf("%w: client certificate of %q names no user", ErrUnauthenticated, cn)
	}
	return User{}, fmt.Errorf("%w: no bearer token or client certificate", ErrUnauthenticated)
}

// wwwAuthenticate is the challenge of a 401 (RFC 6750).
const wwwAuthenticate = `Bearer realm="consensus"`
