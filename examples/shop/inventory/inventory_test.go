package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eachStore runs f against every implementation: Raft on a 3-node local
// cluster, Redis and Reservations on a single Redis and a Redis Cluster.
func eachStore(t *testing.T, f func(t *testing.T, s inventory.Store)) {
	t.Run("store=raft", func(t *testing.T) {
		c := newCluster(t)
		_, err := c.WaitLeader(t.Context())
		require.NoError(t, err)
		f(t, inventory.NewRaft("stock/", c.Nodes()...))
	})
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		t.Run("store=redis", func(t *testing.T) { f(t, inventory.NewRedis(db.Client, db.Key("redis:"))) })
		t.Run("store=reservations", func(t *testing.T) {
			s, err := inventory.NewReservations(db.Client, inventory.ReservationOptions{Prefix: db.Key("res:"), HoldTTL: time.Minute})
			require.NoError(t, err)
			f(t, s)
		})
	})
}

func newCluster(t *testing.T) *consensus.LocalCluster {
	t.Helper()
	c, err := consensus.NewLocalCluster(t.Context(), consensus.ClusterOptions{Nodes: 3})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// Many buyers race for a small stock while a watcher checks the invariant
// on every snapshot: no unit is sold twice, no count goes negative, and
// after commits and releases the arithmetic is exact.
func TestNoOversellUnderConcurrency(t *testing.T) {
	eachStore(t, func(t *testing.T, s inventory.Store) {
		ctx := t.Context()
		const stock, buyers = 10, 200
		require.NoError(t, s.Restock(ctx, "p1", stock))

		stop := make(chan struct{})
		var watched atomic.Int64
		var bad atomic.Value
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				l, err := s.Level(ctx, "p1")
				if errors.Is(err, inventory.ErrUnavailable) {
					continue // a leader change on a loaded machine
				}
				if err != nil {
					bad.Store(err.Error())
					return
				}
				if !l.Consistent() || l.Total != stock {
					bad.Store(fmt.Sprintf("inconsistent level %+v", l))
					return
				}
				watched.Add(1)
			}
		}()

		var won atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, buyers)
		for i := range buyers {
			wg.Go(func() {
				order := fmt.Sprintf("o%d", i)
				err := retry(func() error { return s.Reserve(ctx, "p1", order, 1) })
				switch {
				case err == nil:
					won.Add(1)
					// Half the winners pay, half cancel.
					if i%2 == 0 {
						err = retry(func() error { return s.Commit(ctx, "p1", order) })
					} else {
						err = retry(func() error { return s.Release(ctx, "p1", order) })
					}
					if err != nil {
						errs <- err
					}
				case !errors.Is(err, inventory.ErrOutOfStock):
					errs <- err
				}
			})
		}
		wg.Wait()
		close(stop)
		<-watchDone
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		require.Nil(t, bad.Load(), "watcher")
		assert.Positive(t, watched.Load(), "the watcher saw snapshots")

		l, err := s.Level(ctx, "p1")
		require.NoError(t, err)
		assert.True(t, l.Consistent(), "%+v", l)
		assert.Zero(t, l.Reserved)
		assert.LessOrEqual(t, l.Sold, stock, "oversold")
		// Every winner either bought or released; released units went back,
		// so later buyers may have won them: won ≥ stock, sold + available = stock.
		assert.GreaterOrEqual(t, int(won.Load()), stock)
		assert.Equal(t, stock, l.Sold+l.Available)
	})
}

// retry repeats an operation whose outcome a leader change made unknown,
// as a saga step would: every operation but Restock is idempotent.
func retry(op func() error) error {
	for range 20 {
		if err := op(); !errors.Is(err, inventory.ErrUnavailable) {
			return err
		}
	}
	return op()
}

// Every operation is idempotent per order, so a retried or resumed saga
// step never takes stock twice.
func TestIdempotentPerOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, s inventory.Store) {
		ctx := t.Context()
		require.NoError(t, s.Restock(ctx, "p", 5))
		require.NoError(t, s.Reserve(ctx, "p", "a", 2))
		require.NoError(t, s.Reserve(ctx, "p", "a", 2))
		assertLevel(t, s, "p", inventory.Level{Available: 3, Reserved: 2, Total: 5})

		require.NoError(t, s.Commit(ctx, "p", "a"))
		require.NoError(t, s.Commit(ctx, "p", "a"))
		require.NoError(t, s.Reserve(ctx, "p", "a", 2), "reserve of a sold order is a no-op")
		assertLevel(t, s, "p", inventory.Level{Available: 3, Sold: 2, Total: 5})

		require.NoError(t, s.Reserve(ctx, "p", "b", 3))
		require.NoError(t, s.Release(ctx, "p", "b"))
		require.NoError(t, s.Release(ctx, "p", "b"))
		require.NoError(t, s.Release(ctx, "p", "never"))
		assert.ErrorIs(t, s.Commit(ctx, "p", "b"), inventory.ErrNoHold)
		assertLevel(t, s, "p", inventory.Level{Available: 3, Sold: 2, Total: 5})

		err := s.Reserve(ctx, "p", "c", 4)
		assert.ErrorIs(t, err, inventory.ErrOutOfStock)
		assert.ErrorContains(t, err, `"p" has 3`)
		require.NoError(t, s.Restock(ctx, "p", 1))
		require.NoError(t, s.Reserve(ctx, "p", "c", 4))
		assertLevel(t, s, "p", inventory.Level{Reserved: 4, Sold: 2, Total: 6})

		// Releasing a sold order returns its units (a refunded sale).
		require.NoError(t, s.Release(ctx, "p", "a"))
		require.NoError(t, s.Release(ctx, "p", "a"))
		assertLevel(t, s, "p", inventory.Level{Available: 2, Reserved: 4, Total: 6})
	})
}

// Bad arguments are refused by name and change nothing.
func TestBadInput(t *testing.T) {
	eachStore(t, func(t *testing.T, s inventory.Store) {
		ctx := t.Context()
		require.NoError(t, s.Restock(ctx, "p", 5))
		for _, qty := range []int{0, -1, inventory.MaxQuantity + 1} {
			err := s.Reserve(ctx, "p", "o", qty)
			assert.ErrorIs(t, err, inventory.ErrInvalid, "qty %d", qty)
			assert.ErrorContains(t, err, fmt.Sprint(qty))
			assert.ErrorIs(t, s.Restock(ctx, "p", qty), inventory.ErrInvalid)
		}
		for _, id := range []string{"", "a{b}", string(make([]byte, 200))} {
			assert.ErrorIs(t, s.Reserve(ctx, id, "o", 1), inventory.ErrInvalid)
			assert.ErrorIs(t, s.Reserve(ctx, "p", id, 1), inventory.ErrInvalid)
		}
		assert.ErrorIs(t, s.Reserve(ctx, "nope", "o", 1), inventory.ErrUnknownProduct)
		assert.ErrorIs(t, s.Commit(ctx, "nope", "o"), inventory.ErrUnknownProduct)
		_, err := s.Level(ctx, "nope")
		assert.ErrorIs(t, err, inventory.ErrUnknownProduct)
		assertLevel(t, s, "p", inventory.Level{Available: 5, Total: 5})
	})
}

func assertLevel(t *testing.T, s inventory.Store, product string, want inventory.Level) {
	t.Helper()
	got, err := s.Level(t.Context(), product)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// The Raft store is CP: a leader cut off into a minority refuses to sell,
// while the majority elects a new leader and keeps selling from the same
// stock — with no unit sold on both sides.
func TestRaftMinorityRefuses(t *testing.T) {
	ctx := t.Context()
	c := newCluster(t)
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, inventory.NewRaft("stock/", old).Restock(ctx, "p", 3))

	var majority []string
	for _, id := range c.IDs() {
		if id != old.ID() {
			majority = append(majority, id)
		}
	}
	c.Partition([]string{old.ID()}, majority)
	minority := inventory.NewRaft("stock/", old)
	minority.Timeout = 500 * time.Millisecond
	err = minority.Reserve(ctx, "p", "minority", 1)
	assert.ErrorIs(t, err, inventory.ErrUnavailable)

	_, err = c.WaitLeader(ctx, old.ID())
	require.NoError(t, err)
	// A store that knows every node follows the leader to the majority.
	s := inventory.NewRaft("stock/", c.Nodes()...)
	require.NoError(t, s.Reserve(ctx, "p", "majority", 3))

	c.Heal()
	assertLevel(t, s, "p", inventory.Level{Reserved: 3, Total: 3})
}

// A hold expires after HoldTTL on the store's clock: its units return to
// Available, its Commit fails with ErrNoHold, and another buyer gets them.
// The clock is injected, so the test waits for nothing.
func TestReservationsExpire(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		var mu sync.Mutex
		now := time.Unix(1_700_000_000, 0)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		s, err := inventory.NewReservations(db.Client, inventory.ReservationOptions{Prefix: db.Key(""), HoldTTL: time.Minute, Now: clock})
		require.NoError(t, err)

		require.NoError(t, s.Restock(ctx, "p", 2))
		require.NoError(t, s.Reserve(ctx, "p", "slow", 2))
		assert.ErrorIs(t, s.Reserve(ctx, "p", "other", 1), inventory.ErrOutOfStock)
		advance(59 * time.Second)
		assertLevel(t, s, "p", inventory.Level{Reserved: 2, Total: 2})
		advance(time.Second)
		assertLevel(t, s, "p", inventory.Level{Available: 2, Total: 2})
		assert.ErrorIs(t, s.Commit(ctx, "p", "slow"), inventory.ErrNoHold)
		require.NoError(t, s.Reserve(ctx, "p", "next", 2))
		require.NoError(t, s.Commit(ctx, "p", "next"))
		advance(time.Hour)
		assertLevel(t, s, "p", inventory.Level{Sold: 2, Total: 2})

		_, err = inventory.NewReservations(db.Client, inventory.ReservationOptions{HoldTTL: -time.Second})
		assert.ErrorIs(t, err, inventory.ErrInvalid)
	})
}
