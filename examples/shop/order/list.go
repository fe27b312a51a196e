package order

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// OrderList is the read model of CQRS: per user, the orders newest first
// with their status and amount, and the user's totals — a shape built for
// the order list page, kept apart from the event log that is the truth. A
// consumer feeds it every event ([OrderList.Apply]); it lags the log by the
// relay's delay and is rebuilt by replaying the stream.
//
// All keys of a user share the hash tag {user}, so each update is one
// atomic script on Redis Cluster too. OrderList is safe for concurrent use.
type OrderList struct {
	client redis.UniversalClient
	prefix string
}

// NewOrderList returns the read model on client under prefix.
func NewOrderList(client redis.UniversalClient, prefix string) *OrderList {
	return &OrderList{client: client, prefix: prefix}
}

// Summary is one order in a user's list.
type Summary struct {
	ID      string    `json:"id"`
	Status  Status    `json:"status"`
	Amount  int64     `json:"amount"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Totals are a user's order count and money spent on completed orders.
type Totals struct {
	Orders int   `json:"orders"`
	Spent  int64 `json:"spent"`
}

// applyScript applies one event if it is newer than what the order's entry
// has seen: a redelivered event changes nothing. KEYS: index (sorted set),
// order hash, totals hash. ARGV: seq, status, at (ms), amount (Placed
// only), index member (Placed only).
var applyScript = redis.NewScript(`
local seen = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local seq = tonumber(ARGV[1])
if seq <= seen then return 0 end
redis.call('HSET', KEYS[2], 'seq', seq, 'updated', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'status', ARGV[2]) end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], 'amount', ARGV[4], 'created', ARGV[3])
  redis.call('ZADD', KEYS[1], 0, ARGV[5])
  redis.call('HINCRBY', KEYS[3], 'orders', 1)
end
if ARGV[2] == 'completed' then
  redis.call('HINCRBY', KEYS[3], 'spent', tonumber(redis.call('HGET', KEYS[2], 'amount') or '0'))
end
return 1
`)

func (l *OrderList) keys(user, id string) []string {
	base := l.prefix + "{" + user + "}:"
	return []string{base + "orders", base + "order:" + id, base + "totals"}
}

// Apply updates the list from one event; applying an event twice, or an
// older one after a newer, changes nothing.
func (l *OrderList) Apply(ctx context.Context, e Event) error {
	var member, amount string
	if e.Type == Placed {
		member = indexMember(e.At, e.Order)
		amount = strconv.FormatInt(Order{Lines: e.Lines}.Amount(), 10)
	}
	err := applyScript.Run(ctx, l.client, l.keys(e.User, e.Order), e.Seq, string(statusAfter(e.Type)), e.At.UnixMilli(), amount, member).Err()
	if err != nil {
		return fmt.Errorf("order: list of %q: %w", e.User, err)
	}
	return nil
}

// indexMember sorts by creation time, then id, as bytes — so the index
// needs no scores and a cursor is just the last member seen.
func indexMember(at time.Time, id string) string {
	return fmt.Sprintf("%013d:%s", at.UnixMilli(), id)
}

// List returns up to limit of user's orders, newest first, starting after
// cursor ("" for the first page), and the cursor of the next page ("" at
// the end).
func (l *OrderList) List(ctx context.Context, user, cursor string, limit int) ([]Summary, string, error) {
	k := l.keys(user, "")
	max := "+"
	if cursor != "" {
		max = "(" + cursor
	}
	members, err := l.client.ZRevRangeByLex(ctx, k[0], &redis.ZRangeBy{Max: max, Min: "-", Count: int64(limit + 1)}).Result()
	if err != nil {
		return nil, "", fmt.Errorf("order: list of %q: %w", user, err)
	}
	next := ""
	if len(members) > limit {
		members = members[:limit]
		next = members[limit-1]
	}
	pipe := l.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(members))
	for i, m := range members {
		cmds[i] = pipe.HGetAll(ctx, l.keys(user, m[14:])[1])
	}
	if len(members) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, "", fmt.Errorf("order: list of %q: %w", user, err)
		}
	}
	out := make([]Summary, len(members))
	for i, m := range members {
		h := cmds[i].Val()
		amount, _ := strconv.ParseInt(h["amount"], 10, 64)
		created, _ := strconv.ParseInt(h["created"], 10, 64)
		updated, _ := strconv.ParseInt(h["updated"], 10, 64)
		out[i] = Summary{ID: m[14:], Status: Status(h["status"]), Amount: amount,
			Created: time.UnixMilli(created).UTC(), Updated: time.UnixMilli(updated).UTC()}
	}
	return out, next, nil
}

// Totals returns user's totals.
func (l *OrderList) Totals(ctx context.Context, user string) (Totals, error) {
	h, err := l.client.HGetAll(ctx, l.keys(user, "")[2]).Result()
	if err != nil {
		return Totals{}, fmt.Errorf("order: totals of %q: %w", user, err)
	}
	n, _ := strconv.Atoi(h["orders"])
	spent, _ := strconv.ParseInt(h["spent"], 10, 64)
	return Totals{Orders: n, Spent: spent}, nil
}
