package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
)

// Raft keeps each product's stock as one JSON record in the replicated
// store of package consensus and changes it with Node.CompareAndSwap: read
// the record, compute the new one, write it only if nobody changed it in
// between, else retry from the value the failed swap returns. Every read
// is linearizable, so two buyers can never both take the last unit.
//
// Operations go to the leader among the nodes the store was given,
// following a *consensus.NotLeaderError to the leader it names. The store
// is CP: when none of its nodes can reach a majority (a minority
// partition, an election) every operation fails with ErrUnavailable
// (wrapping the consensus error) within Timeout — the shop stops selling
// rather than oversell.
//
// Raft is safe for concurrent use.
type Raft struct {
	nodes  []*consensus.Node
	prefix string
	// Timeout bounds each operation, redirects and elections included.
	// Zero means 2 seconds.
	Timeout time.Duration

	cur atomic.Int32 // index in nodes of the last known leader
}

// NewRaft returns a store under key prefix (for example "shop/stock/") on
// nodes of one Raft group — all of them, or those this process reaches.
func NewRaft(prefix string, nodes ...*consensus.Node) *Raft {
	return &Raft{nodes: nodes, prefix: prefix}
}

// do runs f on the leader: on a NotLeaderError it moves to the leader named
// (or, with none named, the next node, after a pause for the election)
// and runs f again.
func (s *Raft) do(ctx context.Context, f func(n *consensus.Node) error) error {
	if len(s.nodes) == 0 {
		return fmt.Errorf("%w: no Raft node", ErrUnavailable)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		i := int(s.cur.Load())
		err := f(s.nodes[i])
		var nl *consensus.NotLeaderError
		if !errors.As(err, &nl) {
			return err
		}
		next := slices.IndexFunc(s.nodes, func(n *consensus.Node) bool { return n.ID() == nl.LeaderID })
		if next < 0 || next == i {
			next = (i + 1) % len(s.nodes)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(10 * time.Millisecond):
			}
		}
		s.cur.CompareAndSwap(int32(i), int32(next))
	}
}

// record is a product's state in the Raft store.
type record struct {
	Total int            `json:"total"`
	Holds map[string]int `json:"holds,omitempty"` // order → units held
	Sold  map[string]int `json:"sold,omitempty"`  // order → units sold
}

func (r record) level() Level {
	l := Level{Total: r.Total}
	for _, q := range r.Holds {
		l.Reserved += q
	}
	for _, q := range r.Sold {
		l.Sold += q
	}
	l.Available = l.Total - l.Reserved - l.Sold
	return l
}

// errNoChange tells update that the record needs no write.
var errNoChange = errors.New("no change")

// update applies f to product's record with compare-and-swap, retrying
// on conflict. create allows a missing record (Restock).
func (s *Raft) update(ctx context.Context, product string, create bool, f func(*record) error) error {
	return s.do(ctx, func(n *consensus.Node) error { return s.updateOn(ctx, n, product, create, f) })
}

func (s *Raft) updateOn(ctx context.Context, n *consensus.Node, product string, create bool, f func(*record) error) error {
	key := s.prefix + product
	kv, err := n.Get(ctx, key)
	missing := errors.Is(err, consensus.ErrKeyNotFound)
	if err != nil && !missing {
		return unavailable(err)
	}
	for {
		var rec record
		if missing {
			if !create {
				return fmt.Errorf("%w: %q", ErrUnknownProduct, product)
			}
		} else if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("inventory: record of %q: %w", product, err)
		}
		if err := f(&rec); errors.Is(err, errNoChange) {
			return nil
		} else if err != nil {
			return err
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if missing {
			_, err = n.Create(ctx, key, b)
		} else {
			_, err = n.CompareAndSwap(ctx, key, kv.Value, b)
		}
		var cf *consensus.CompareFailedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &cf):
			kv, missing = cf.Current, false
		case errors.Is(err, consensus.ErrKeyExists):
			if kv, err = n.Get(ctx, key); err != nil {
				return unavailable(err)
			}
			missing = false
		default:
			// A timeout leaves the outcome unknown; the caller retries the
			// idempotent operation.
			return unavailable(err)
		}
	}
}

func unavailable(err error) error {
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Restock implements Store.
func (s *Raft) Restock(ctx context.Context, product string, qty int) error {
	if err := checkID("product", product); err != nil {
		return err
	}
	if err := checkQty(qty); err != nil {
		return err
	}
	return s.update(ctx, product, true, func(r *record) error {
		r.Total += qty
		return nil
	})
}

// Reserve implements Store.
func (s *Raft) Reserve(ctx context.Context, product, order string, qty int) error {
	if err := checkIDs(product, order); err != nil {
		return err
	}
	if err := checkQty(qty); err != nil {
		return err
	}
	return s.update(ctx, product, false, func(r *record) error {
		if r.Holds[order] > 0 || r.Sold[order] > 0 {
			return errNoChange
		}
		if avail := r.level().Available; avail < qty {
			return fmt.Errorf("%w: %q has %d, order %q wants %d", ErrOutOfStock, product, avail, order, qty)
		}
		if r.Holds == nil {
			r.Holds = map[string]int{}
		}
		r.Holds[order] = qty
		return nil
	})
}

// Commit implements Store.
func (s *Raft) Commit(ctx context.Context, product, order string) error {
	if err := checkIDs(product, order); err != nil {
		return err
	}
	return s.update(ctx, product, false, func(r *record) error {
		if r.Sold[order] > 0 {
			return errNoChange
		}
		q := r.Holds[order]
		if q == 0 {
			return fmt.Errorf("%w: %q of %q", ErrNoHold, order, product)
		}
		delete(r.Holds, order)
		if r.Sold == nil {
			r.Sold = map[string]int{}
		}
		r.Sold[order] = q
		return nil
	})
}

// Release implements Store.
func (s *Raft) Release(ctx context.Context, product, order string) error {
	if err := checkIDs(product, order); err != nil {
		return err
	}
	return s.update(ctx, product, false, func(r *record) error {
		if r.Holds[order] == 0 && r.Sold[order] == 0 {
			return errNoChange
		}
		delete(r.Holds, order)
		delete(r.Sold, order)
		return nil
	})
}

// Level implements Store.
func (s *Raft) Level(ctx context.Context, product string) (Level, error) {
	if err := checkID("product", product); err != nil {
		return Level{}, err
	}
	var kv consensus.KV
	err := s.do(ctx, func(n *consensus.Node) (err error) {
		kv, err = n.Get(ctx, s.prefix+product)
		return err
	})
	if errors.Is(err, consensus.ErrKeyNotFound) {
		return Level{}, fmt.Errorf("%w: %q", ErrUnknownProduct, product)
	}
	if err != nil {
		return Level{}, unavailable(err)
	}
	var rec record
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return Level{}, fmt.Errorf("inventory: record of %q: %w", product, err)
	}
	return rec.level(), nil
}
