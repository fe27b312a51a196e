package service

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/resilience/dlq"
)

// job is a fan-out job: push post ID into its author's followers' home
// timelines, if the strategy pushes for the author.
type job struct {
	ID string `json:"id"`
	// Created is the post's time in unix ms, for the post-to-visible
	// latency.
	Created int64 `json:"created"`
}

// publish creates post p with sequence seq (or finds the one idem
// created before) and queues its fan-out. It returns the stored post.
func (s *Service) publish(ctx context.Context, p Post, idem string) (Post, error) {
	err := s.redis(ctx, func(ctx context.Context) error {
		if err := s.st.exists(ctx, p.Author); err != nil {
			return err
		}
		if p.ReplyTo != "" {
			if ps, err := s.st.posts(ctx, []string{p.ReplyTo}); err != nil {
				return err
			} else if len(ps) == 0 {
				return clientErr("unknown_post", "reply_to", "no post %q to reply to", p.ReplyTo)
			}
		}
		seq, err := s.st.nextSeq(ctx)
		if err != nil {
			return err
		}
		p.ID = postID(seq, p.Author)
		got, err := s.st.createPost(ctx, seq, p, idem, s.cfg.IdempotencyTTL)
		if err != nil {
			return err
		}
		if got != seq { // a resend: answer the post stored the first time
			ps, err := s.st.posts(ctx, []string{postID(got, p.Author)})
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return fmt.Errorf("feed: post %d of idempotency key %q is gone", got, idem)
			}
			p = ps[0]
		} else {
			s.metrics.posts.Add(1)
			if p.ReplyTo != "" {
				if err := s.st.replied(ctx, p.ReplyTo); err != nil {
					return err
				}
			}
		}
		// The post stream feeds the search indexes; logged again on a
		// resend, as indexing a post twice writes the same document.
		if err := s.logPost(ctx, p); err != nil {
			return err
		}
		// Queued again on a resend too: the first attempt may have
		// stored the post and failed here. Fan-out is idempotent.
		body, _ := json.Marshal(job{ID: p.ID, Created: p.Created.UnixMilli()})
		_, err = s.queues[s.placement.Locate(p.Author)].Publish(ctx, body)
		return err
	})
	if err == nil {
		s.notify(ctx, p)
	}
	return p, err
}

// fanOut runs one job: it pushes the post into every follower's home
// timeline and trims each to TimelineCap, unless the author has too many
// followers for the strategy to push. Running it twice writes the same
// entries, so redelivery is harmless.
func (s *Service) fanOut(ctx context.Context, m dlq.Message) (err error) {
	defer func() {
		if err == nil {
			s.metrics.jobs.Add(1)
		}
	}()
	var j job
	if err := json.Unmarshal(m.Body, &j); err != nil {
		return fmt.Errorf("feed: fan-out job %q: %w", trunc(string(m.Body)), err)
	}
	seq, author, ok := parsePostID(j.ID)
	if !ok {
		return fmt.Errorf("feed: fan-out job of post %q: not a post ID", trunc(j.ID))
	}
	if s.isPullOnly() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*s.cfg.RedisTimeout)
	defer cancel()
	followers, db := s.st.key(author, "followers"), s.st.db(author)
	n, err := db.SCard(ctx, followers).Result()
	if err != nil {
		return err
	}
	if !s.cfg.Strategy.Push(n) {
		return nil
	}
	s.metrics.pushed.Add(1)
	var cursor uint64
	for {
		var batch []string
		batch, cursor, err = db.SScan(ctx, followers, cursor, "", 1000).Result()
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			pp := s.st.pipes() // one per shard of the batch's followers
			for _, f := range batch {
				home, p := s.st.key(f, "home"), pp.of(f)
				p.ZAdd(ctx, home, redis.Z{Score: float64(seq), Member: j.ID})
				p.ZRemRangeByRank(ctx, home, 0, int64(-s.cfg.TimelineCap-1))
			}
			if err := pp.exec(ctx); err != nil {
				return err
			}
			s.metrics.inserts.Add(uint64(len(batch)))
		}
		if cursor == 0 {
			break
		}
	}
	s.metrics.visible.Observe(since(s.cfg.Now, time.UnixMilli(j.Created)))
	return nil
}

// Page is a page of a timeline, newest first. NextCursor, when not
// empty, is the cursor of the next (older) page.
type Page struct {
	Posts      []Post `json:"posts"`
	NextCursor string `json:"next_cursor,omitempty"`
	// Stale is set when Redis was unavailable and the page is the last
	// one served to this user.
	Stale bool `json:"stale,omitempty"`
}

// source is one sorted set merged into a home timeline.
type source struct {
	cmd *redis.ZSliceCmd
	// filter drops entries of authors the reader no longer follows (the
	// pushed home timeline keeps them until they are trimmed).
	filter bool
}

// home reads a page of user's home timeline: the pushed entries, the
// recent posts of the followees the strategy pulls, and user's own
// recent posts (read-your-writes), merged newest first.
func (s *Service) home(ctx context.Context, user string, cursor int64, n int) (Page, error) {
	var page Page
	err := s.redis(ctx, func(ctx context.Context) error {
		if err := s.st.exists(ctx, user); err != nil {
			return err
		}
		following, err := s.st.db(user).SMembers(ctx, s.st.key(user, "following")).Result()
		if err != nil {
			return err
		}
		pulled, err := s.pulled(ctx, following)
		if err != nil {
			return err
		}
		pp := s.st.pipes() // the reader's shard and each pulled followee's
		srcs := []source{{cmd: before(ctx, pp.of(user), s.st.key(user, "posts"), cursor, n)}}
		if !s.isPullOnly() {
			srcs = append(srcs, source{cmd: before(ctx, pp.of(user), s.st.key(user, "home"), cursor, n), filter: true})
		}
		for _, f := range pulled {
			srcs = append(srcs, source{cmd: before(ctx, pp.of(f), s.st.key(f, "posts"), cursor, n)})
		}
		if err := pp.exec(ctx); err != nil {
			return err
		}
		s.metrics.pulled.Add(uint64(len(pulled)))
		followed := make(map[string]bool, len(following)+1)
		for _, f := range following {
			followed[f] = true
		}
		followed[user] = true
		taken, next := merge(srcs, n, followed)
		ids := make([]string, len(taken))
		for i, e := range taken {
			ids[i] = e.id
		}
		posts, err := s.st.posts(ctx, ids)
		if err != nil {
			return err
		}
		s.cfg.Ranking.order(posts, s.cfg.Now())
		page = Page{Posts: posts}
		if next > 0 {
			page.NextCursor = strconv.FormatInt(next, 10)
		}
		return nil
	})
	return page, err
}

// pulled returns the followees whose posts the strategy merges at read
// time; hybrid reads their follower counts, cached for CountTTL.
func (s *Service) pulled(ctx context.Context, following []string) ([]string, error) {
	switch {
	case s.isPullOnly():
		return following, nil
	case s.isPushOnly():
		return nil, nil
	}
	counts := make(map[string]int64, len(following))
	var missing []string
	for _, f := range following {
		if n, ok := s.counts.Get(f); ok {
			counts[f] = n
		} else {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		pp := s.st.pipes()
		cmds := make([]*redis.IntCmd, len(missing))
		for i, f := range missing {
			cmds[i] = pp.of(f).SCard(ctx, s.st.key(f, "followers"))
		}
		if err := pp.exec(ctx); err != nil {
			return nil, err
		}
		for i, f := range missing {
			counts[f] = cmds[i].Val()
			_ = s.counts.Set(f, cmds[i].Val())
		}
	}
	var out []string
	for _, f := range following {
		if s.cfg.Strategy.Pull(counts[f]) {
			out = append(out, f)
		}
	}
	return out, nil
}

// merge takes up to n entries, newest first, from the union of the
// sources, each of which holds its newest n entries below the cursor.
// A source that returned n entries may hold more below its last: only
// entries at or above the highest such last entry are certain to be the
// newest of the union, so the page stops there and next resumes below
// it. next is 0 when nothing older remains.
func merge(srcs []source, n int, followed map[string]bool) (taken []entry, next int64) {
	var bound int64
	for _, src := range srcs {
		if es := entries(src.cmd); len(es) == n {
			bound = max(bound, es[len(es)-1].seq)
		}
	}
	seen := map[string]bool{}
	var all []entry
	for _, src := range srcs {
		for _, e := range entries(src.cmd) {
			if e.seq < bound || seen[e.id] {
				continue
			}
			if _, author, ok := parsePostID(e.id); !ok || (src.filter && !followed[author]) {
				continue
			}
			seen[e.id] = true
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.seq, a.seq) })
	if len(all) >= n {
		return all[:n], all[n-1].seq
	}
	return all, bound
}

// userPosts reads a page of author's own posts.
func (s *Service) userPosts(ctx context.Context, author string, cursor int64, n int) (Page, error) {
	var page Page
	err := s.redis(ctx, func(ctx context.Context) error {
		if err := s.st.exists(ctx, author); err != nil {
			return err
		}
		p := s.st.db(author).Pipeline()
		cmd := before(ctx, p, s.st.key(author, "posts"), cursor, n)
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
		es := entries(cmd)
		ids := make([]string, len(es))
		for i, e := range es {
			ids[i] = e.id
		}
		posts, err := s.st.posts(ctx, ids)
		if err != nil {
			return err
		}
		page = Page{Posts: posts}
		if len(es) == n {
			page.NextCursor = strconv.FormatInt(es[n-1].seq, 10)
		}
		return nil
	})
	return page, err
}

// backfill pushes followee's recent posts into user's home timeline when
// user starts following, if the strategy pushes them, so the home
// timeline does not wait for followee's next post.
func (s *Service) backfill(ctx context.Context, user, followee string) error {
	if s.isPullOnly() {
		return nil
	}
	db := s.st.db(followee)
	n, err := db.SCard(ctx, s.st.key(followee, "followers")).Result()
	if err != nil || !s.cfg.Strategy.Push(n) {
		return err
	}
	zs, err := db.ZRevRangeWithScores(ctx, s.st.key(followee, "posts"), 0, int64(s.cfg.TimelineCap-1)).Result()
	if err != nil || len(zs) == 0 {
		return err
	}
	home := s.st.key(user, "home")
	p := s.st.db(user).Pipeline()
	p.ZAdd(ctx, home, zs...)
	p.ZRemRangeByRank(ctx, home, 0, int64(-s.cfg.TimelineCap-1))
	_, err = p.Exec(ctx)
	return err
}
