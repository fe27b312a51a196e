package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/redisring"
)

// store is the service's durable state in Redis. Every key of a
// conversation shares the hash tag {c:<conversation>} and every key of a
// user the tag {u:<user>}, so each script touches one Cluster slot:
//
//	{c:C}:seq       the last sequence number assigned in C (INCR)
//	{c:C}:log       C's messages, a Stream whose IDs are <seq>-0
//	{c:C}:dedup:ID  the sequence number the client message ID got (exactly-once)
//	{c:C}:members   a group's members (a Set)
//	{u:U}:inbox     U's durable queue: copies of messages fanned out on write
//	{u:U}:acked     U's acknowledged sequence per conversation (a Hash)
//	{u:U}:groups    U's groups (a Set)
//	{u:U}:presence  the gateways holding U's connections (a Sorted Set by expiry)
//	{u:U}:key       U's published public key
//
// With several shards, a conversation's keys live on the shard the ring
// places "c:<conversation>" on and a user's on the one it places
// "u:<user>" on; pub/sub channels are on rdb.
type store struct {
	rdb    redis.UniversalClient // pub/sub
	ring   *redisring.Ring       // the shards (rdb alone by default)
	prefix string
}

// newStore places state on shards (nil: all on rdb).
func newStore(rdb redis.UniversalClient, shards []redis.UniversalClient, prefix string) (*store, error) {
	ring, err := redisring.New(rdb, shards)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &store{rdb: rdb, ring: ring, prefix: prefix}, nil
}

// shardOf returns the index of the shard holding conversation c ("c:" id)
// or user u ("u:" id).
func (st *store) shardOf(id string) int { return st.ring.Index(id) }

func (st *store) convDB(c string) redis.UniversalClient { return st.ring.DB("c:" + c) }
func (st *store) userDB(u string) redis.UniversalClient { return st.ring.DB("u:" + u) }

// eachUserShard runs fn once per shard holding some of users, with them.
func (st *store) eachUserShard(users []string, fn func(db redis.UniversalClient, users []string) error) error {
	if st.ring.Len() == 1 {
		return fn(st.ring.Shard(0), users)
	}
	by := map[int][]string{}
	for _, u := range users {
		i := st.shardOf("u:" + u)
		by[i] = append(by[i], u)
	}
	for i, us := range by {
		if err := fn(st.ring.Shard(i), us); err != nil {
			return err
		}
	}
	return nil
}

func (st *store) conv(c, suffix string) string { return st.prefix + "{c:" + c + "}:" + suffix }
func (st *store) user(u, suffix string) string { return st.prefix + "{u:" + u + "}:" + suffix }
func (st *store) gatewayChannel(gw string) string {
	return st.prefix + "gw:" + gw
}
func (st *store) groupChannel(c string) string { return st.prefix + "conv:" + c }

// appendScript assigns the conversation's next sequence number and appends
// the message to its log in one step, so order is total within a
// conversation. In exactly-once mode (ARGV[1] == "1") a client message ID
// seen before returns the sequence number it got, and nothing is written.
var appendScript = redis.NewScript(`
if ARGV[1] == '1' then
  local s = redis.call('GET', KEYS[3])
  if s then return {tonumber(s), 1} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-0', 'from', ARGV[3], 'id', ARGV[4], 'body', ARGV[5], 'media', ARGV[6], 'ts', ARGV[7])
if ARGV[1] == '1' then redis.call('SET', KEYS[3], seq, 'PX', ARGV[2]) end
return {seq, 0}
`)

// ackScript moves a user's acknowledged sequence of a conversation
// forward, never back: it returns 1 when it moved, 0 for a replayed or
// stale acknowledgement.
var ackScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local s = tonumber(ARGV[2])
if s <= cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], s)
return 1
`)

// createGroupScript creates a group's member set unless it exists.
var createGroupScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SADD', KEYS[1], unpack(ARGV))
return 1
`)

// leavePresenceScript removes a gateway from a user's presence.
var leavePresenceScript = redis.NewScript(`return redis.call('ZREM', KEYS[1], ARGV[1])`)

// appendMessage stores m (Conv, From, ID, Body, Media, TS set) and returns
// it with its sequence number, and whether the client message ID had been
// stored before (exactly-once mode only), in which case the stored message
// is returned.
func (st *store) appendMessage(ctx context.Context, m Frame, dedup bool, dedupTTL time.Duration) (Frame, bool, error) {
	mode := "0"
	if dedup {
		mode = "1"
	}
	keys := []string{st.conv(m.Conv, "seq"), st.conv(m.Conv, "log"), st.conv(m.Conv, "dedup:"+m.ID)}
	res, err := appendScript.Run(ctx, st.convDB(m.Conv), keys, mode, dedupTTL.Milliseconds(), m.From, m.ID, m.Body, m.Media, m.TS).Int64Slice()
	if err != nil {
		return Frame{}, false, err
	}
	m.Seq = res[0]
	if res[1] == 0 {
		return m, false, nil
	}
	stored, err := st.readLog(ctx, m.Conv, m.Seq, m.Seq, 1)
	if err != nil {
		return Frame{}, true, err
	}
	if len(stored) == 1 {
		m = stored[0]
	}
	return m, true, nil
}

// readLog returns up to n messages of conversation c with from ≤ seq ≤ to
// (to 0: no bound), oldest first.
func (st *store) readLog(ctx context.Context, c string, from, to int64, n int64) ([]Frame, error) {
	end := "+"
	if to > 0 {
		end = strconv.FormatInt(to, 10) + "-0"
	}
	xs, err := st.convDB(c).XRangeN(ctx, st.conv(c, "log"), strconv.FormatInt(from, 10)+"-0", end, n).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Frame, 0, len(xs))
	for _, x := range xs {
		out = append(out, logFrame(c, x))
	}
	return out, nil
}

// readLogBefore returns up to n messages of c with seq < before (0: the
// newest), oldest first.
func (st *store) readLogBefore(ctx context.Context, c string, before, n int64) ([]Frame, error) {
	start := "+"
	if before > 0 {
		start = strconv.FormatInt(before-1, 10) + "-0"
		if before == 1 {
			return nil, nil
		}
	}
	xs, err := st.convDB(c).XRevRangeN(ctx, st.conv(c, "log"), start, "-", n).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Frame, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = logFrame(c, x)
	}
	return out, nil
}

func logFrame(c string, x redis.XMessage) Frame {
	seq, _, _ := strings.Cut(x.ID, "-")
	f := Frame{Type: "msg", Conv: c}
	f.Seq, _ = strconv.ParseInt(seq, 10, 64)
	f.From, _ = x.Values["from"].(string)
	f.ID, _ = x.Values["id"].(string)
	f.Body, _ = x.Values["body"].(string)
	f.Media, _ = x.Values["media"].(string)
	ts, _ := x.Values["ts"].(string)
	f.TS, _ = strconv.ParseInt(ts, 10, 64)
	return f
}

// lastSeq returns the last sequence number assigned in c (0: none).
func (st *store) lastSeq(ctx context.Context, c string) (int64, error) {
	n, err := st.convDB(c).Get(ctx, st.conv(c, "seq")).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// fanOut copies m into the inbox of each user.
func (st *store) fanOut(ctx context.Context, m Frame, users []string) error {
	return st.eachUserShard(users, func(db redis.UniversalClient, users []string) error {
		_, err := db.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range users {
				p.XAdd(ctx, &redis.XAddArgs{Stream: st.user(u, "inbox"), Values: []any{
					"conv", m.Conv, "seq", m.Seq, "from", m.From, "id", m.ID, "body", m.Body, "media", m.Media, "ts", m.TS,
				}})
			}
			return nil
		})
		return err
	})
}

// inbox returns up to n entries of u's inbox after the entry ID after
// ("" from the start), with their entry IDs.
func (st *store) inbox(ctx context.Context, u, after string, n int64) ([]Frame, []string, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	xs, err := st.userDB(u).XRangeN(ctx, st.user(u, "inbox"), start, "+", n).Result()
	if err != nil {
		return nil, nil, err
	}
	fs, ids := make([]Frame, len(xs)), make([]string, len(xs))
	for i, x := range xs {
		c, _ := x.Values["conv"].(string)
		f := logFrame(c, x)
		s, _ := x.Values["seq"].(string)
		f.Seq, _ = strconv.ParseInt(s, 10, 64)
		fs[i], ids[i] = f, x.ID
	}
	return fs, ids, nil
}

// trimInbox drops u's inbox entries before the entry ID minID.
func (st *store) trimInbox(ctx context.Context, u, minID string) error {
	return st.userDB(u).XTrimMinID(ctx, st.user(u, "inbox"), minID).Err()
}

// acked returns u's acknowledged sequence per conversation.
func (st *store) acked(ctx context.Context, u string) (map[string]int64, error) {
	h, err := st.userDB(u).HGetAll(ctx, st.user(u, "acked")).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(h))
	for c, s := range h {
		out[c], _ = strconv.ParseInt(s, 10, 64)
	}
	return out, nil
}

// ack moves u's acknowledged sequence of c to seq; moved is false for a
// replayed acknowledgement.
func (st *store) ack(ctx context.Context, u, c string, seq int64) (moved bool, err error) {
	n, err := ackScript.Run(ctx, st.userDB(u), []string{st.user(u, "acked")}, c, seq).Int()
	return n == 1, err
}

// members returns a group's members (empty: no such group).
func (st *store) members(ctx context.Context, c string) ([]string, error) {
	return st.convDB(c).SMembers(ctx, st.conv(c, "members")).Result()
}

// createGroup creates group c with members; created is false if it exists.
func (st *store) createGroup(ctx context.Context, c string, members []string) (created bool, err error) {
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	n, err := createGroupScript.Run(ctx, st.convDB(c), []string{st.conv(c, "members")}, args...).Int()
	if err != nil || n == 0 {
		return false, err
	}
	return true, st.joined(ctx, c, members, 0)
}

// addMember adds u to group c, acknowledged up to the group's last message
// so the newcomer is not flooded with history (it can page it).
func (st *store) addMember(ctx context.Context, c, u string) error {
	last, err := st.lastSeq(ctx, c)
	if err != nil {
		return err
	}
	if err := st.convDB(c).SAdd(ctx, st.conv(c, "members"), u).Err(); err != nil {
		return err
	}
	return st.joined(ctx, c, []string{u}, last)
}

func (st *store) joined(ctx context.Context, c string, users []string, acked int64) error {
	return st.eachUserShard(users, func(db redis.UniversalClient, users []string) error {
		_, err := db.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range users {
				p.SAdd(ctx, st.user(u, "groups"), c)
				if acked > 0 {
					p.HSet(ctx, st.user(u, "acked"), c, acked)
				}
			}
			return nil
		})
		return err
	})
}

// groups returns u's groups.
func (st *store) groups(ctx context.Context, u string) ([]string, error) {
	return st.userDB(u).SMembers(ctx, st.user(u, "groups")).Result()
}

// present records that gateway gw holds connections of users, until ttl.
func (st *store) present(ctx context.Context, gw string, users []string, ttl time.Duration, now time.Time) error {
	until := float64(now.Add(ttl).UnixMilli())
	return st.eachUserShard(users, func(db redis.UniversalClient, users []string) error {
		_, err := db.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range users {
				k := st.user(u, "presence")
				p.ZAdd(ctx, k, redis.Z{Score: until, Member: gw})
				p.ZRemRangeByScore(ctx, k, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
				p.PExpire(ctx, k, ttl)
			}
			return nil
		})
		return err
	})
}

// absent removes gateway gw from u's presence.
func (st *store) absent(ctx context.Context, gw, u string) error {
	return leavePresenceScript.Run(ctx, st.userDB(u), []string{st.user(u, "presence")}, gw).Err()
}

// gateways returns, for each user, the gateways whose presence has not
// expired at now.
func (st *store) gateways(ctx context.Context, users []string, now time.Time) (map[string][]string, error) {
	out := map[string][]string{}
	err := st.eachUserShard(users, func(db redis.UniversalClient, users []string) error {
		cmds := make([]*redis.StringSliceCmd, len(users))
		_, err := db.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, u := range users {
				cmds[i] = p.ZRangeByScore(ctx, st.user(u, "presence"), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf"})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, c := range cmds {
			for _, gw := range c.Val() {
				out[gw] = append(out[gw], users[i])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// setKey publishes u's public key; key reads it ("" when none).
func (st *store) setKey(ctx context.Context, u, key string) error {
	return st.userDB(u).Set(ctx, st.user(u, "key"), key, 0).Err()
}

func (st *store) key(ctx context.Context, u string) (string, error) {
	k, err := st.userDB(u).Get(ctx, st.user(u, "key")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return k, err
}

// nextID returns the stream entry ID right after id.
func nextID(id string) string {
	ms, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return fmt.Sprintf("%s-%d", ms, n+1)
}
