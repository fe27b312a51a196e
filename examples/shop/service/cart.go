package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxLineQty bounds one cart line, so a huge quantity is refused, not
// clamped.
const maxLineQty = 100

// maxCartLines bounds a cart's distinct products.
const maxCartLines = 50

var (
	errCartFull  = errors.New("cart full")
	errNoSession = errors.New("unknown or expired session")
)

// carts keeps sessions and carts in Redis, each with a TTL renewed on use:
// a session is a random id naming its guest cart; a user's cart is named
// for the user. A cart is one hash (product → quantity), so each change is
// one command and a cart lives in one Cluster slot.
type carts struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
}

func (c *carts) sessionKey(id string) string { return c.prefix + "session:" + id }
func (c *carts) cartKey(id string) string    { return c.prefix + "cart:{" + id + "}" }

// newSession creates a session and its guest cart id.
func (c *carts) newSession(ctx context.Context) (session, cart string, err error) {
	session, cart = randomID("s-"), randomID("g-")
	if err := c.client.Set(ctx, c.sessionKey(session), cart, c.ttl).Err(); err != nil {
		return "", "", err
	}
	return session, cart, nil
}

// sessionCart returns the guest cart of session.
func (c *carts) sessionCart(ctx context.Context, session string) (string, error) {
	if len(session) != 34 {
		return "", errNoSession
	}
	cart, err := c.client.GetEx(ctx, c.sessionKey(session), c.ttl).Result()
	if errors.Is(err, redis.Nil) {
		return "", errNoSession
	}
	return cart, err
}

// userCart names user's cart.
func userCart(user string) string { return "u-" + user }

// setLine sets product's quantity in cart; 0 removes it.
var setLineScript = redis.NewScript(`
if tonumber(ARGV[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
    return 0
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

func (c *carts) setLine(ctx context.Context, cart, product string, qty int) error {
	ok, err := setLineScript.Run(ctx, c.client, []string{c.cartKey(cart)}, product, qty, c.ttl.Milliseconds(), maxCartLines).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("%w: %d products at most", errCartFull, maxCartLines)
	}
	return nil
}

// lines returns cart's product → quantity.
func (c *carts) lines(ctx context.Context, cart string) (map[string]int, error) {
	h, err := c.client.HGetAll(ctx, c.cartKey(cart)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(h))
	for p, q := range h {
		n, err := strconv.Atoi(q)
		if err != nil {
			return nil, fmt.Errorf("cart %s: quantity %q of %s", cart, q, p)
		}
		out[p] = n
	}
	return out, nil
}

// merge moves the guest cart into the user's, keeping per product the
// larger quantity — so a merge retried after a failure gives the same
// cart — then deletes the guest cart. The two carts are in different
// slots, so this is two steps, each idempotent.
func (c *carts) merge(ctx context.Context, guest, user string) error {
	g, err := c.lines(ctx, guest)
	if err != nil || len(g) == 0 {
		return err
	}
	u, err := c.lines(ctx, user)
	if err != nil {
		return err
	}
	for p, q := range g {
		if q > u[p] {
			if err := c.setLine(ctx, user, p, q); err != nil {
				return err
			}
		}
	}
	return c.client.Del(ctx, c.cartKey(guest)).Err()
}

func (c *carts) clear(ctx context.Context, cart string) error {
	return c.client.Del(ctx, c.cartKey(cart)).Err()
}

func randomID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
