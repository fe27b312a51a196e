package replica

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
)

// Session carries the session guarantees of Terry et al., "Session
// Guarantees for Weakly Consistent Replicated Data" (1994), for one client:
// per key, the version vector of everything the session has written or
// read. Passed in [Options.Session], it gives
//
//   - read-your-writes and monotonic reads: a read answers only with a
//     merge at least as recent as that vector (waiting for more replicas
//     if it must, else [ErrSessionUnavailable]);
//   - monotonic writes and writes-follow-reads: a write's causal context
//     includes that vector, so it is ordered after the session's earlier
//     writes and the reads it depends on, on every replica.
//
// The guarantees hold per key (a thread of writes to one key is causally
// ordered); they do not order writes to different keys. A client that moves
// between coordinators carries the session as a token
// ([Coordinator.SessionToken], [Coordinator.ResumeSession]).
//
// The zero value is an empty session ready to use; it is safe for
// concurrent use. Its size grows with the keys it touched.
type Session struct {
	mu   sync.Mutex               // guards seen
	seen map[string]VersionVector // per key, what the session wrote or read
}

// vector returns the session's vector for key.
func (s *Session) vector(key string) VersionVector {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[key]
}

// observe adds v to the session's vector for key.
func (s *Session) observe(key string, v VersionVector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = make(map[string]VersionVector)
	}
	s.seen[key] = s.seen[key].Join(v)
}

// token is the signed content of a session token.
type token struct {
	Issued int64                    `json:"t"`
	Seen   map[string]VersionVector `json:"s"`
}

// SessionToken returns s as a token a client carries to another
// coordinator: the session's vectors and the time, signed with
// Config.SessionKey.
func (c *Coordinator) SessionToken(s *Session) string {
	s.mu.Lock()
	t := token{Issued: c.cfg.Now().UnixNano(), Seen: maps.Clone(s.seen)}
	s.mu.Unlock()
	body, _ := json.Marshal(t) // a map of string → map of string → uint64 always encodes
	mac := hmac.New(sha256.New, c.cfg.SessionKey)
	mac.Write(body)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(body) + "." + enc.EncodeToString(mac.Sum(nil))
}

// ResumeSession returns the session a token carries. A token that does not
// decode, whose signature is not this cluster's (forged or altered), or
// older than Config.SessionTTL (stale), is an error wrapping
// [ErrSessionToken].
func (c *Coordinator) ResumeSession(tok string) (*Session, error) {
	enc := base64.RawURLEncoding
	// Neither part holds a dot: base64url has none.
	bodyPart, sigPart, _ := strings.Cut(tok, ".")
	body, err1 := enc.DecodeString(bodyPart)
	sig, err2 := enc.DecodeString(sigPart)
	if bodyPart == "" || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: does not decode", ErrSessionToken)
	}
	mac := hmac.New(sha256.New, c.cfg.SessionKey)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, fmt.Errorf("%w: signature does not match (forged, altered, or signed with another session key)", ErrSessionToken)
	}
	var t token
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSessionToken, err)
	}
	if age := c.cfg.Now().Sub(time.Unix(0, t.Issued)); age > c.cfg.SessionTTL {
		return nil, fmt.Errorf("%w: stale: issued %v ago (SessionTTL %v)", ErrSessionToken, age.Round(time.Second), c.cfg.SessionTTL)
	}
	for key, v := range t.Seen {
		for n, x := range v {
			if key == "" || n == "" || x == 0 {
				return nil, fmt.Errorf("%w: entry %q/%q: %d", ErrSessionToken, key, n, x)
			}
		}
	}
	return &Session{seen: t.Seen}, nil
}

// sessionKey returns key, or a random key when it is empty.
func sessionKey(key []byte) ([]byte, error) {
	if len(key) > 0 {
		return key, nil
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("replica: session key: %w", err)
	}
	return key, nil
}
