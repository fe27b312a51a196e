package service

import (
	"context"
	"fmt"
	"time"
)

// Follow is one edge of a follow graph: From follows To.
type Follow struct{ From, To string }

// Import loads a follow graph in bulk — the users' profiles (named after
// their IDs; existing ones are kept) and the follows — in pipelined
// batches, as a migration from another store would. Follows of unknown
// users are refused before anything is written.
func (s *Service) Import(ctx context.Context, users []string, follows []Follow) error {
	known := make(map[string]bool, len(users))
	for _, u := range users {
		if !idRE.MatchString(u) {
			return clientErr("bad_user", "user", "user %q: want 1 to 32 of A-Z a-z 0-9 _ -", trunc(u))
		}
		known[u] = true
	}
	for _, f := range follows {
		if !known[f.From] || !known[f.To] || f.From == f.To {
			return clientErr("bad_follow", "follow", "follow %q → %q: both must be distinct imported users", trunc(f.From), trunc(f.To))
		}
	}
	const batch = 2000
	now := s.cfg.Now().UnixMilli()
	for i := 0; i < len(users); i += batch {
		pp := s.st.pipes()
		for _, u := range users[i:min(i+batch, len(users))] {
			k := s.st.key(u, "profile")
			pp.of(u).HSetNX(ctx, k, "name", u)
			pp.of(u).HSetNX(ctx, k, "created", now)
		}
		if err := s.exec(ctx, pp); err != nil {
			return err
		}
	}
	for i := 0; i < len(follows); i += batch {
		pp := s.st.pipes()
		for _, f := range follows[i:min(i+batch, len(follows))] {
			pp.of(f.From).SAdd(ctx, s.st.key(f.From, "following"), f.To)
			pp.of(f.To).SAdd(ctx, s.st.key(f.To, "followers"), f.From)
		}
		if err := s.exec(ctx, pp); err != nil {
			return err
		}
	}
	s.counts.DeleteFunc(func(string, int64) bool { return true })
	return nil
}

// exec runs the pipelines with a timeout scaled for a bulk batch.
func (s *Service) exec(ctx context.Context, pp *pipes) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pp.exec(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}
