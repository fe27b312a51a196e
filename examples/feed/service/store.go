package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/redisring"
)

// The Redis layout. Every key of a user carries the user's hash tag, so
// a Lua script or transaction over one user's keys stays on one Cluster
// slot:
//
//	<prefix>u:{alice}:profile     hash: name, created (unix ms)
//	<prefix>u:{alice}:posts       sorted set: alice's post IDs by sequence (her user timeline, complete)
//	<prefix>u:{alice}:post:<seq>  hash: the post (the source of truth)
//	<prefix>u:{alice}:idem:<key>  string: the sequence of the post an Idempotency-Key created
//	<prefix>u:{alice}:followers   set: who follows alice
//	<prefix>u:{alice}:following   set: whom alice follows (read by fan-out on read)
//	<prefix>u:{alice}:home        sorted set: alice's home timeline, capped (written by fan-out on write)
//	<prefix>u:{alice}:likers:<seq> set: who liked the post
//	<prefix>seq                   string: the post sequence (INCR), global so that timelines sort by it
//
// With several shards (Config.Shards), every u:{alice}:* key lives on the
// shard a consistent-hash ring places "alice" on, and on no other: a
// user's keys and posts are found from the user ID alone, and a post's
// from its ID, which names its author. The keys that are not a user's —
// the sequence, the fan-out queues, the post stream, the page cache and
// the notification channel — stay on rdb (Config.Redis).
type store struct {
	rdb    redis.UniversalClient // the sequence, queues, post stream, page cache, pub/sub
	ring   *redisring.Ring       // the shards of users' keys (rdb alone by default)
	prefix string
}

// newStore places users' keys on shards (none: all on rdb).
func newStore(rdb redis.UniversalClient, shards []redis.UniversalClient, prefix string) (*store, error) {
	ring, err := redisring.New(rdb, shards)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &store{rdb: rdb, ring: ring, prefix: prefix}, nil
}

// shardOf returns the index of the shard holding user's keys.
func (st *store) shardOf(user string) int { return st.ring.Index(user) }

// db returns the client of the shard holding user's keys.
func (st *store) db(user string) redis.UniversalClient { return st.ring.DB(user) }

// pipes is one pipeline per shard, each made on first use: commands on
// several users' keys are queued on their shards' pipelines and sent by
// exec, one round trip per shard, the shards in parallel.
type pipes struct {
	st *store
	ps map[int]redis.Pipeliner
}

func (st *store) pipes() *pipes { return &pipes{st: st, ps: map[int]redis.Pipeliner{}} }

// of returns the pipeline of user's shard.
func (pp *pipes) of(user string) redis.Pipeliner {
	i := pp.st.shardOf(user)
	p, ok := pp.ps[i]
	if !ok {
		p = pp.st.ring.Shard(i).Pipeline()
		pp.ps[i] = p
	}
	return p
}

// exec sends every pipeline and returns their errors joined (a command's
// own error, redis.Nil included, as Pipeliner.Exec reports it).
func (pp *pipes) exec(ctx context.Context) error {
	if len(pp.ps) == 1 {
		for _, p := range pp.ps {
			_, err := p.Exec(ctx)
			return err
		}
	}
	errs := make(chan error, len(pp.ps))
	for _, p := range pp.ps {
		go func() {
			_, err := p.Exec(ctx)
			errs <- err
		}()
	}
	var err error
	for range pp.ps {
		err = errors.Join(err, <-errs)
	}
	return err
}

func (st *store) key(user, what string) string { return st.prefix + "u:{" + user + "}:" + what }

func (st *store) postKey(author string, seq int64) string {
	return st.key(author, "post:"+strconv.FormatInt(seq, 10))
}

// idRE is the shape of a user ID.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Post is a post as the API shows it.
type Post struct {
	// ID is "<seq>-<author>": the global sequence orders timelines, the
	// author locates the post's key.
	ID     string   `json:"id"`
	Author string   `json:"author"`
	Text   string   `json:"text"`
	Media  []string `json:"media,omitempty"`
	// Created is when the post was stored.
	Created time.Time `json:"created"`
	Likes   int64     `json:"likes"`
	Replies int64     `json:"replies"`
	// ReplyTo is the ID of the post this one answers, if any.
	ReplyTo string `json:"reply_to,omitempty"`
}

func postID(seq int64, author string) string { return strconv.FormatInt(seq, 10) + "-" + author }

// parsePostID splits a post ID into its sequence and author.
func parsePostID(id string) (int64, string, bool) {
	s, a, ok := strings.Cut(id, "-")
	if !ok || !idRE.MatchString(a) {
		return 0, "", false
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil || seq <= 0 || strconv.FormatInt(seq, 10) != s {
		return 0, "", false
	}
	return seq, a, true
}

// User is a user's profile.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Followers int64     `json:"followers"`
	Following int64     `json:"following"`
}

// createUser stores a profile; it reports false if the user exists.
func (st *store) createUser(ctx context.Context, id, name string, now time.Time) (bool, error) {
	k := st.key(id, "profile")
	db := st.db(id)
	ok, err := db.HSetNX(ctx, k, "name", name).Result()
	if err != nil || !ok {
		return false, err
	}
	return true, db.HSet(ctx, k, "created", now.UnixMilli()).Err()
}

// user returns a profile, or an unknown_user error.
func (st *store) user(ctx context.Context, id string) (User, error) {
	p := st.db(id).Pipeline()
	prof := p.HGetAll(ctx, st.key(id, "profile"))
	fers := p.SCard(ctx, st.key(id, "followers"))
	fing := p.SCard(ctx, st.key(id, "following"))
	if _, err := p.Exec(ctx); err != nil {
		return User{}, err
	}
	h := prof.Val()
	if len(h) == 0 {
		return User{}, clientErr("unknown_user", "user", "no user %q", id)
	}
	ms, _ := strconv.ParseInt(h["created"], 10, 64)
	return User{ID: id, Name: h["name"], Created: time.UnixMilli(ms).UTC(), Followers: fers.Val(), Following: fing.Val()}, nil
}

// exists reports an unknown_user error for each id without a profile.
func (st *store) exists(ctx context.Context, ids ...string) error {
	pp := st.pipes()
	cmds := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pp.of(id).Exists(ctx, st.key(id, "profile"))
	}
	if err := pp.exec(ctx); err != nil {
		return err
	}
	for i, c := range cmds {
		if c.Val() == 0 {
			return clientErr("unknown_user", "user", "no user %q", ids[i])
		}
	}
	return nil
}

// follow records that a follows b (or, with on false, no longer does).
// The two sides are on two slots (and shards): following is written first, as it is
// what reads trust, and both writes are idempotent, so a retry after a
// failure between them completes the pair.
func (st *store) follow(ctx context.Context, a, b string, on bool) error {
	if on {
		if err := st.db(a).SAdd(ctx, st.key(a, "following"), b).Err(); err != nil {
			return err
		}
		return st.db(b).SAdd(ctx, st.key(b, "followers"), a).Err()
	}
	if err := st.db(a).SRem(ctx, st.key(a, "following"), b).Err(); err != nil {
		return err
	}
	return st.db(b).SRem(ctx, st.key(b, "followers"), a).Err()
}

// createScript stores a post and indexes it in its author's timeline,
// once per Idempotency-Key: KEYS = post, posts, idem (or the posts key
// again when there is no key); ARGV = seq, id, text, media, created,
// idem TTL in seconds, reply_to. It returns the sequence of the post stored under
// the key, which is ARGV[1] unless the key was used before.
var createScript = redis.NewScript(`
if KEYS[3] ~= KEYS[2] then
  local prev = redis.call('GET', KEYS[3])
  if prev then return tonumber(prev) end
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[6])
end
redis.call('HSET', KEYS[1], 'text', ARGV[3], 'media', ARGV[4], 'created', ARGV[5], 'reply_to', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return tonumber(ARGV[1])
`)

// createPost stores p (ID, Created and Media set by the caller from seq)
// and returns the sequence of the stored post: p's, or an earlier one's
// created with the same idempotency key.
func (st *store) createPost(ctx context.Context, seq int64, p Post, idem string, idemTTL time.Duration) (int64, error) {
	media, err := json.Marshal(p.Media)
	if err != nil {
		return 0, err
	}
	posts := st.key(p.Author, "posts")
	ik := posts
	if idem != "" {
		ik = st.key(p.Author, "idem:"+idem)
	}
	return createScript.Run(ctx, st.db(p.Author), []string{st.postKey(p.Author, seq), posts, ik},
		seq, p.ID, p.Text, media, p.Created.UnixMilli(), int64(idemTTL/time.Second), p.ReplyTo).Int64()
}

// likeScript adds (ARGV[1] = 1) or removes (0) the like of ARGV[2] on the
// post KEYS[1], whose likers are the set KEYS[2] (same slot), and keeps
// the post's like count equal to the set's size. It returns -1 if the
// post does not exist, else the count.
var likeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local changed
if ARGV[1] == '1' then changed = redis.call('SADD', KEYS[2], ARGV[2]) else changed = redis.call('SREM', KEYS[2], ARGV[2]) end
if changed == 1 then
  if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'likes', 1) else redis.call('HINCRBY', KEYS[1], 'likes', -1) end
end
return tonumber(redis.call('HGET', KEYS[1], 'likes') or '0')
`)

// like records (or, with on false, removes) user's like of post id; it
// returns the post's like count.
func (st *store) like(ctx context.Context, id, user string, on bool) (int64, error) {
	seq, author, _ := parsePostID(id)
	flag := "0"
	if on {
		flag = "1"
	}
	n, err := likeScript.Run(ctx, st.db(author), []string{st.postKey(author, seq), st.key(author, "likers:"+strconv.FormatInt(seq, 10))}, flag, user).Int64()
	if err == nil && n < 0 {
		return 0, clientErr("unknown_post", "id", "no post %q", id)
	}
	return n, err
}

// replied counts a reply to post id, if it exists.
func (st *store) replied(ctx context.Context, id string) error {
	seq, author, _ := parsePostID(id)
	return replyScript.Run(ctx, st.db(author), []string{st.postKey(author, seq)}).Err()
}

var replyScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'replies', 1) end
return 0
`)

// nextSeq allocates a post sequence.
func (st *store) nextSeq(ctx context.Context) (int64, error) {
	return st.rdb.Incr(ctx, st.prefix+"seq").Result()
}

// posts returns the posts of ids in order, skipping any that are gone;
// each is read from its author's shard.
func (st *store) posts(ctx context.Context, ids []string) ([]Post, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pp := st.pipes()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		seq, a, _ := parsePostID(id)
		cmds[i] = pp.of(a).HGetAll(ctx, st.postKey(a, seq))
	}
	if err := pp.exec(ctx); err != nil {
		return nil, err
	}
	out := make([]Post, 0, len(ids))
	for i, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			continue
		}
		_, a, _ := parsePostID(ids[i])
		ms, _ := strconv.ParseInt(h["created"], 10, 64)
		post := Post{ID: ids[i], Author: a, Text: h["text"], Created: time.UnixMilli(ms).UTC()}
		if err := json.Unmarshal([]byte(h["media"]), &post.Media); err != nil {
			return nil, fmt.Errorf("feed: post %s: media: %w", ids[i], err)
		}
		post.Likes, _ = strconv.ParseInt(h["likes"], 10, 64)
		post.Replies, _ = strconv.ParseInt(h["replies"], 10, 64)
		post.ReplyTo = h["reply_to"]
		out = append(out, post)
	}
	return out, nil
}

// entry is a post ID in a timeline with its sequence.
type entry struct {
	seq int64
	id  string
}

// before returns up to n entries of the sorted set key with a sequence
// below cursor (0: from the newest), newest first, as one pipelined
// command (cmd's result is read after the pipeline runs).
func before(ctx context.Context, p redis.Pipeliner, key string, cursor int64, n int) *redis.ZSliceCmd {
	max := "+inf"
	if cursor > 0 {
		max = "(" + strconv.FormatInt(cursor, 10)
	}
	return p.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: max, Min: "-inf", Count: int64(n)})
}

func entries(c *redis.ZSliceCmd) []entry {
	zs := c.Val()
	out := make([]entry, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, entry{seq: int64(z.Score), id: id})
	}
	return out
}

// isNil reports whether err is only a missing key.
func isNil(err error) bool { return errors.Is(err, redis.Nil) }
