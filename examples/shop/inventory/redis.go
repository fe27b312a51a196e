package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps each product's stock in Redis and changes it with one Lua
// script per operation, which Redis runs atomically: the check "enough
// available?" and the decrement cannot interleave with another buyer's.
// A product's keys share the hash tag {product}, so the script is safe on
// Redis Cluster.
//
// Its risk is the one the guide's CAP section states for AP stores: Redis
// acknowledges a sale before a replica has it, so a failover may forget
// sales and sell those units again. Holds never expire: a checkout that
// crashes between Reserve and Commit keeps its units until something (the
// order saga's recovery) releases them.
//
// Redis is safe for concurrent use.
type Redis struct {
	core redisCore
}

// NewRedis returns a store on client with every key under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{core: redisCore{client: client, prefix: prefix}}
}

// Reservations is [Redis] with holds that expire: a hold not committed or
// released within HoldTTL returns its units to Available, checked at the
// start of every operation on the product (so no goroutine sweeps). A
// checkout that crashes leaks nothing; a payment slower than HoldTTL finds
// its hold gone (Commit fails with ErrNoHold) and the order must refund.
//
// Reservations is safe for concurrent use.
type Reservations struct {
	core redisCore
}

// ReservationOptions configures [NewReservations].
type ReservationOptions struct {
	// Prefix is put before every key.
	Prefix string
	// HoldTTL is how long a hold lasts. Zero means 10 minutes.
	HoldTTL time.Duration
	// Now is the clock deciding expiry; nil means time.Now. Every process
	// sharing the store should use the same clock source.
	Now func() time.Time
}

// NewReservations returns a store with expiring holds on client.
func NewReservations(client redis.UniversalClient, o ReservationOptions) (*Reservations, error) {
	if o.HoldTTL < 0 {
		return nil, fmt.Errorf("%w: HoldTTL %v", ErrInvalid, o.HoldTTL)
	}
	if o.HoldTTL == 0 {
		o.HoldTTL = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reservations{core: redisCore{client: client, prefix: o.Prefix, ttl: o.HoldTTL, now: o.Now}}, nil
}

// Restock implements Store.
func (s *Redis) Restock(ctx context.Context, product string, qty int) error {
	return s.core.restock(ctx, product, qty)
}

// Reserve implements Store.
func (s *Redis) Reserve(ctx context.Context, product, order string, qty int) error {
	return s.core.reserve(ctx, product, order, qty)
}

// Commit implements Store.
func (s *Redis) Commit(ctx context.Context, product, order string) error {
	return s.core.commit(ctx, product, order)
}

// Release implements Store.
func (s *Redis) Release(ctx context.Context, product, order string) error {
	return s.core.release(ctx, product, order)
}

// Level implements Store.
func (s *Redis) Level(ctx context.Context, product string) (Level, error) {
	return s.core.level(ctx, product)
}

// Restock implements Store.
func (s *Reservations) Restock(ctx context.Context, product string, qty int) error {
	return s.core.restock(ctx, product, qty)
}

// Reserve implements Store. The hold expires HoldTTL from now.
func (s *Reservations) Reserve(ctx context.Context, product, order string, qty int) error {
	return s.core.reserve(ctx, product, order, qty)
}

// Commit implements Store.
func (s *Reservations) Commit(ctx context.Context, product, order string) error {
	return s.core.commit(ctx, product, order)
}

// Release implements Store.
func (s *Reservations) Release(ctx context.Context, product, order string) error {
	return s.core.release(ctx, product, order)
}

// Level implements Store, after returning expired holds to Available.
func (s *Reservations) Level(ctx context.Context, product string) (Level, error) {
	return s.core.level(ctx, product)
}

// redisCore runs the stock script; ttl zero means holds never expire.
type redisCore struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// stockScript is every operation on one product. KEYS: level hash (total,
// reserved, sold), holds hash (order → units), sold hash (order → units),
// expiry sorted set (order → deadline in ms). ARGV: op, order, qty, now
// (ms), ttl (ms, 0 = never). It first returns expired holds, then applies
// op, and answers {status, available, reserved, sold, total}.
var stockScript = redis.NewScript(`
local level, holds, sold, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, order, qty, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local exists = redis.call('EXISTS', level) == 1
if ttl > 0 and exists then
  for _, o in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
    local q = tonumber(redis.call('HGET', holds, o) or '0')
    redis.call('HDEL', holds, o)
    redis.call('ZREM', expiry, o)
    redis.call('HINCRBY', level, 'reserved', -q)
  end
end
local function answer(status)
  local v = redis.call('HMGET', level, 'total', 'reserved', 'sold')
  local t, r, s = tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
  return {status, t - r - s, r, s, t}
end
if op == 'restock' then
  redis.call('HINCRBY', level, 'total', qty)
  return answer('ok')
end
if not exists then return answer('unknown') end
if op == 'reserve' then
  if redis.call('HEXISTS', holds, order) == 1 or redis.call('HEXISTS', sold, order) == 1 then
    return answer('ok')
  end
  local v = redis.call('HMGET', level, 'total', 'reserved', 'sold')
  if tonumber(v[1]) - tonumber(v[2] or '0') - tonumber(v[3] or '0') < qty then
    return answer('out')
  end
  redis.call('HSET', holds, order, qty)
  redis.call('HINCRBY', level, 'reserved', qty)
  if ttl > 0 then redis.call('ZADD', expiry, now + ttl, order) end
  return answer('ok')
elseif op == 'commit' then
  if redis.call('HEXISTS', sold, order) == 1 then return answer('ok') end
  local q = redis.call('HGET', holds, order)
  if not q then return answer('nohold') end
  redis.call('HDEL', holds, order)
  redis.call('ZREM', expiry, order)
  redis.call('HSET', sold, order, q)
  redis.call('HINCRBY', level, 'reserved', -tonumber(q))
  redis.call('HINCRBY', level, 'sold', tonumber(q))
  return answer('ok')
elseif op == 'release' then
  local s = redis.call('HGET', sold, order)
  if s then
    redis.call('HDEL', sold, order)
    redis.call('HINCRBY', level, 'sold', -tonumber(s))
  end
  local q = redis.call('HGET', holds, order)
  if q then
    redis.call('HDEL', holds, order)
    redis.call('ZREM', expiry, order)
    redis.call('HINCRBY', level, 'reserved', -tonumber(q))
  end
  return answer('ok')
end
return answer('ok')
`)

func (c redisCore) run(ctx context.Context, op, product, order string, qty int) (Level, error) {
	base := c.prefix + "{" + product + "}:"
	keys := []string{base + "level", base + "holds", base + "sold", base + "expiry"}
	var now int64
	if c.ttl > 0 {
		now = c.now().UnixMilli()
	}
	v, err := stockScript.Run(ctx, c.client, keys, op, order, qty, now, c.ttl.Milliseconds()).Slice()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return Level{}, err
		}
		return Level{}, unavailable(err)
	}
	if len(v) != 5 {
		return Level{}, fmt.Errorf("inventory: stock script answered %v", v)
	}
	l := Level{Available: toInt(v[1]), Reserved: toInt(v[2]), Sold: toInt(v[3]), Total: toInt(v[4])}
	switch v[0] {
	case "ok":
		return l, nil
	case "unknown":
		return l, fmt.Errorf("%w: %q", ErrUnknownProduct, product)
	case "out":
		return l, fmt.Errorf("%w: %q has %d, order %q wants %d", ErrOutOfStock, product, l.Available, order, qty)
	case "nohold":
		return l, fmt.Errorf("%w: %q of %q", ErrNoHold, order, product)
	}
	return l, fmt.Errorf("inventory: stock script answered %v", v[0])
}

func toInt(v any) int {
	n, _ := v.(int64)
	return int(n)
}

func (c redisCore) restock(ctx context.Context, product string, qty int) error {
	if err := checkID("product", product); err != nil {
		return err
	}
	if err := checkQty(qty); err != nil {
		return err
	}
	_, err := c.run(ctx, "restock", product, "", qty)
	return err
}

func (c redisCore) reserve(ctx context.Context, product, order string, qty int) error {
	if err := checkIDs(product, order); err != nil {
		return err
	}
	if err := checkQty(qty); err != nil {
		return err
	}
	_, err := c.run(ctx, "reserve", product, order, qty)
	return err
}

func (c redisCore) commit(ctx context.Context, product, order string) error {
	if err := checkIDs(product, order); err != nil {
		return err
	}
	_, err := c.run(ctx, "commit", product, order, 0)
	return err
}

func (c redisCore) release(ctx context.Context, product, order string) error {
	if err := checkIDs(product, order); err != nil {
		return err
	}
	_, err := c.run(ctx, "release", product, order, 0)
	return err
}

func (c redisCore) level(ctx context.Context, product string) (Level, error) {
	if err := checkID("product", product); err != nil {
		return Level{}, err
	}
	return c.run(ctx, "level", product, "", 0)
}
