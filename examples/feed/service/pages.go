package service

import (
	"context"
	"fmt"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
)

// The cache of personalized first pages (Config.PageTTL): a home
// timeline's first page of the default size, in an L1 in process over an
// L2 in Redis (rediscache.MultiLevel), so any instance serves a page
// another built. Each entry carries the newest sequence of the reader's
// pushed home timeline and of their own posts when it was built; a read
// checks both in one round trip (two ZREVRANGE 0 0) and rebuilds the page
// if either moved. So what shows, and how stale a page may be:
//
//   - the reader's own posts and pushed posts of followees show at once
//     (as soon as their fan-out job has run) — the entry is revalidated,
//     not invalidated, so a celebrity's fan-out costs no cache deletions;
//   - a follow or unfollow deletes the entry;
//   - pulled posts (fan-out on read, celebrities in hybrid mode), likes
//     and replies do not move either mark: such a page is at most PageTTL
//     old.
//
// A hit costs one Redis round trip instead of the merge (the followees,
// their ranges, the posts). Deletions reach the other instances' L1 over
// Redis pub/sub; if a message is lost, the L1 entry still expires within
// PageTTL.

// defaultLimit is the page size that is cached.
const defaultLimit = 20

// cachedPage is a cached first page with the marks it was built at.
type cachedPage struct {
	Page Page `json:"page"`
	// Home and Own are the newest sequences of the pushed home timeline
	// and of the reader's posts when the page was built.
	Home int64 `json:"home"`
	Own  int64 `json:"own"`
}

func (s *Service) newPages(ctx context.Context) error {
	if s.cfg.PageTTL == 0 {
		return nil
	}
	l1, err := cache.NewMemory(100_000, cache.MemoryOptions[string, cachedPage]{DefaultTTL: s.cfg.PageTTL, Now: s.cfg.Now})
	if err != nil {
		return err
	}
	l2, err := rediscache.New[cachedPage](s.cfg.Redis, rediscache.Options{Prefix: s.cfg.Prefix + "page:", DefaultTTL: s.cfg.PageTTL, Timeout: s.cfg.RedisTimeout})
	if err != nil {
		return err
	}
	s.pages, err = rediscache.NewMultiLevel(ctx, l1, l2, rediscache.MultiLevelOptions{Channel: s.cfg.Prefix + "page-invalidate", L1TTL: s.cfg.PageTTL})
	if err != nil {
		return fmt.Errorf("feed: page cache: %w", err)
	}
	return nil
}

// marks returns the newest sequences of user's home timeline and posts.
func (s *Service) marks(ctx context.Context, user string) (home, own int64, err error) {
	err = s.redis(ctx, func(ctx context.Context) error {
		p := s.st.db(user).Pipeline()
		h := p.ZRevRangeWithScores(ctx, s.st.key(user, "home"), 0, 0)
		o := p.ZRevRangeWithScores(ctx, s.st.key(user, "posts"), 0, 0)
		if _, err := p.Exec(ctx); err != nil && !isNil(err) {
			return err
		}
		if z := h.Val(); len(z) > 0 {
			home = int64(z[0].Score)
		}
		if z := o.Val(); len(z) > 0 {
			own = int64(z[0].Score)
		}
		return nil
	})
	return home, own, err
}

// firstPage returns user's first page from the cache if it is still
// current, else builds it (and caches it with the marks read first).
func (s *Service) firstPage(ctx context.Context, user string) (Page, error) {
	home, own, err := s.marks(ctx, user)
	if err != nil {
		return Page{}, err
	}
	if c, _, ok, err := s.pages.Get(ctx, user); err == nil && ok && c.Home == home && c.Own == own {
		s.metrics.pageHits.Add(1)
		return c.Page, nil
	}
	page, err := s.home(ctx, user, 0, defaultLimit)
	if err == nil {
		_ = s.pages.Set(ctx, user, cachedPage{Page: page, Home: home, Own: own}, 0)
	}
	return page, err
}

// invalidate deletes the cached first pages of users.
func (s *Service) invalidate(ctx context.Context, users ...string) {
	if s.pages == nil {
		return
	}
	for _, u := range users {
		_ = s.pages.Delete(ctx, u)
	}
}
