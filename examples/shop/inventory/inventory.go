package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on. Each is wrapped with the values that caused it.
var (
	// ErrOutOfStock: fewer units are available than asked for.
	ErrOutOfStock = errors.New("inventory: out of stock")
	// ErrUnknownProduct: the product has no stock record (see Store.Restock).
	ErrUnknownProduct = errors.New("inventory: unknown product")
	// ErrNoHold: Commit found no hold for the order — it was never made,
	// was released, or expired.
	ErrNoHold = errors.New("inventory: no hold for order")
	// ErrInvalid: a quantity, product or order id the store cannot accept.
	ErrInvalid = errors.New("inventory: invalid argument")
	// ErrUnavailable: the store cannot decide now (no quorum, leader lost,
	// server unreachable). Nothing was changed that the caller can rely on;
	// the operation may be retried, since every operation is idempotent.
	ErrUnavailable = errors.New("inventory: unavailable")
)

// MaxQuantity bounds one Reserve or Restock, so a huge quantity is refused
// rather than overflowing a counter.
const MaxQuantity = 1_000_000

// Level is one product's stock. Available + Reserved + Sold = Total.
type Level struct {
	Available int `json:"available"`
	Reserved  int `json:"reserved"`
	Sold      int `json:"sold"`
	Total     int `json:"total"`
}

// Consistent reports whether the level satisfies the invariant: no negative
// count and Available + Reserved + Sold = Total.
func (l Level) Consistent() bool {
	return l.Available >= 0 && l.Reserved >= 0 && l.Sold >= 0 &&
		l.Available+l.Reserved+l.Sold == l.Total
}

// Store is stock keeping with per-order holds. Implementations are safe for
// concurrent use, also from several processes sharing one backend.
type Store interface {
	// Restock adds qty units of product to Total and Available, creating
	// the product's record if needed.
	Restock(ctx context.Context, product string, qty int) error
	// Reserve holds qty units of product for order, or fails with
	// ErrOutOfStock leaving the stock unchanged. Reserving again for an
	// order that holds (or bought) the product is a no-op.
	Reserve(ctx context.Context, product, order string, qty int) error
	// Commit turns order's hold into a sale. Committing a sold order is a
	// no-op; an order with no hold fails with ErrNoHold.
	Commit(ctx context.Context, product, order string) error
	// Release returns order's units, held or sold, to Available: the
	// compensation of a checkout that failed, even after Commit. Releasing
	// an order with nothing held or sold is a no-op.
	Release(ctx context.Context, product, order string) error
	// Level returns product's current stock.
	Level(ctx context.Context, product string) (Level, error)
}

// Compile-time checks that every implementation is a Store.
var (
	_ Store = (*Raft)(nil)
	_ Store = (*Redis)(nil)
	_ Store = (*Reservations)(nil)
)

// checkID refuses ids that would break a key layout (braces would change a
// Redis Cluster hash tag) or are unbounded.
func checkID(kind, id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "{}\x00") {
		return fmt.Errorf("%w: %s %q", ErrInvalid, kind, id)
	}
	return nil
}

func checkQty(qty int) error {
	if qty <= 0 || qty > MaxQuantity {
		return fmt.Errorf("%w: quantity %d outside 1..%d", ErrInvalid, qty, MaxQuantity)
	}
	return nil
}

func checkIDs(product, order string) error {
	if err := checkID("product", product); err != nil {
		return err
	}
	return checkID("order", order)
}
