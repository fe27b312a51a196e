package order

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// payments is a provider double that counts real charges per key.
type payments struct {
	mu       sync.Mutex
	charged  map[string]int // key → times money was taken
	refunded map[string]bool
	decline  bool
	// afterCharge runs after money is taken; an error from it is returned
	// instead of the answer, as when the caller dies before it arrives.
	afterCharge func() error
}

func newPayments() *payments {
	return &payments{charged: map[string]int{}, refunded: map[string]bool{}}
}

func (p *payments) Charge(_ context.Context, key string, amount int64) (string, error) {
	p.mu.Lock()
	if p.decline {
		p.mu.Unlock()
		return "", fmt.Errorf("%w: card of %q", ErrDeclined, key)
	}
	if p.refunded[key] {
		p.mu.Unlock()
		return "", fmt.Errorf("%w: %q refunded", ErrDeclined, key)
	}
	if p.charged[key] == 0 {
		p.charged[key]++
	}
	hook := p.afterCharge
	p.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return "", err
		}
	}
	return "ch_" + key, nil
}

func (p *payments) Refund(_ context.Context, key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refunded[key] = true
	return nil
}

// shipping is a warehouse double.
type shipping struct {
	mu        sync.Mutex
	shipped   map[string]bool
	cancelled map[string]bool
	refuse    bool
}

func newShipping() *shipping {
	return &shipping{shipped: map[string]bool{}, cancelled: map[string]bool{}}
}

func (s *shipping) Ship(_ context.Context, order string, _ []Line) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse {
		return "", fmt.Errorf("%w: no courier for %q", ErrDeclined, order)
	}
	s.shipped[order] = true
	return "sh_" + order, nil
}

func (s *shipping) Cancel(_ context.Context, order string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelled[order] = true
	return nil
}

type fixture struct {
	db    *redistest.DB
	dir   string
	log   *Log
	stock inventory.Store
	pay   *payments
	ship  *shipping
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := redistest.New(t)
	f := &fixture{db: db, dir: t.TempDir(), stock: inventory.NewRedis(db.Client, db.Key("stock:")), pay: newPayments(), ship: newShipping()}
	f.reopen(t)
	t.Cleanup(func() { _ = f.log.Close() })
	require.NoError(t, f.stock.Restock(t.Context(), "book", 3))
	return f
}

// reopen closes the log, if open, and opens it again from disk: a restart.
func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if f.log != nil {
		require.NoError(t, f.log.Close())
	}
	l, err := OpenLog(filepath.Join(f.dir, "orders.db"))
	require.NoError(t, err)
	f.log = l
}

func (f *fixture) orchestrator() *Orchestrator {
	return NewOrchestrator(f.log, Services{Stock: f.stock, Payments: f.pay, Shipping: f.ship})
}

func (f *fixture) level(t *testing.T) inventory.Level {
	t.Helper()
	l, err := f.stock.Level(t.Context(), "book")
	require.NoError(t, err)
	require.True(t, l.Consistent(), "%+v", l)
	return l
}

var twoBooks = []Line{{Product: "book", Qty: 2, Price: 1500}}

// A good order runs all three steps and sells its stock; its state rebuilt
// from the events on disk equals the state the saga returned.
func TestSagaCompletes(t *testing.T) {
	f := newFixture(t)
	o, err := f.orchestrator().Place(t.Context(), "o1", "ann", twoBooks)
	require.NoError(t, err)
	assert.Equal(t, StatusDone, o.Status)
	assert.Equal(t, "ch_o1", o.Charge)
	assert.Equal(t, "sh_o1", o.Shipment)
	assert.Equal(t, inventory.Level{Available: 1, Sold: 2, Total: 3}, f.level(t))
	assert.Equal(t, 1, f.pay.charged["o1"])

	f.reopen(t)
	replayed, events, err := f.log.History("o1")
	require.NoError(t, err)
	assert.Equal(t, o, replayed, "replay = live state")
	var types []Type
	for _, e := range events {
		types = append(types, e.Type)
		assert.Equal(t, "ann", e.User)
	}
	assert.Equal(t, []Type{Placed, StockReserved, PaymentCharged, ShipmentCreated, Completed}, types)

	// Placing the same order again runs nothing twice.
	again, err := f.orchestrator().Place(t.Context(), "o1", "ann", twoBooks)
	require.NoError(t, err)
	assert.Equal(t, o, again)
	assert.Equal(t, 1, f.pay.charged["o1"])
	active, err := f.log.Active()
	require.NoError(t, err)
	assert.Empty(t, active)
}

// Each failing step compensates exactly the steps that may have run.
func TestSagaCompensates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		lines      []Line
		breakIt    func(*fixture)
		wantRefund bool
		wantCancel bool
		wantEvents []Type
	}{
		{name: "out of stock", lines: []Line{{Product: "book", Qty: 4, Price: 1}},
			wantEvents: []Type{Placed, Compensating, StockReleased, Failed}},
		{name: "unknown product", lines: []Line{{Product: "book", Qty: 1}, {Product: "ghost", Qty: 1}},
			wantEvents: []Type{Placed, Compensating, StockReleased, Failed}},
		{name: "payment declined", lines: twoBooks, breakIt: func(f *fixture) { f.pay.decline = true }, wantRefund: true,
			wantEvents: []Type{Placed, StockReserved, Compensating, PaymentRefunded, StockReleased, Failed}},
		{name: "shipping refused", lines: twoBooks, breakIt: func(f *fixture) { f.ship.refuse = true }, wantRefund: true, wantCancel: true,
			wantEvents: []Type{Placed, StockReserved, PaymentCharged, Compensating, ShipmentCancelled, PaymentRefunded, StockReleased, Failed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.breakIt != nil {
				tc.breakIt(f)
			}
			o, err := f.orchestrator().Place(t.Context(), "o1", "ann", tc.lines)
			require.NoError(t, err)
			assert.Equal(t, StatusCancelled, o.Status)
			assert.NotEmpty(t, o.Reason)
			assert.Equal(t, inventory.Level{Available: 3, Total: 3}, f.level(t), "stock fully released")
			assert.Equal(t, tc.wantRefund, f.pay.refunded["o1"])
			assert.Equal(t, tc.wantCancel, f.ship.cancelled["o1"])
			_, events, err := f.log.History("o1")
			require.NoError(t, err)
			var types []Type
			for _, e := range events {
				types = append(types, e.Type)
			}
			assert.Equal(t, tc.wantEvents, types)
		})
	}
}

// The process dies after the provider took the money but before the
// charge was recorded. A new orchestrator on the same file resumes the
// order: the charge is asked again with the same key, nothing is charged
// twice, and no order is left unfinished.
func TestOrchestratorCrashResumes(t *testing.T) {
	f := newFixture(t)
	f.pay.afterCharge = func() error { return errors.New("process killed") }
	_, err := f.orchestrator().Place(t.Context(), "o1", "ann", twoBooks)
	require.ErrorContains(t, err, "process killed")
	f.pay.afterCharge = nil

	f.reopen(t)
	active, err := f.log.Active()
	require.NoError(t, err)
	assert.Equal(t, []string{"o1"}, active, "the crash left o1 unfinished")
	o, err := f.log.Load("o1")
	require.NoError(t, err)
	assert.Equal(t, StatusReserved, o.Status)

	require.NoError(t, f.orchestrator().Recover(t.Context()))
	o, err = f.log.Load("o1")
	require.NoError(t, err)
	assert.Equal(t, StatusDone, o.Status)
	assert.Equal(t, 1, f.pay.charged["o1"], "charged once")
	assert.Equal(t, inventory.Level{Available: 1, Sold: 2, Total: 3}, f.level(t))
	active, err = f.log.Active()
	require.NoError(t, err)
	assert.Empty(t, active)
}

// An order whose forward step keeps failing for a reason that is not final
// stays where it is until GiveUp, then is compensated on the next run.
func TestOrchestratorGivesUp(t *testing.T) {
	f := newFixture(t)
	now := time.Unix(1_700_000_000, 0)
	r := f.orchestrator()
	r.Now = func() time.Time { return now }
	r.svc.Payments = outage{}
	o, err := r.Place(t.Context(), "o1", "ann", twoBooks)
	require.ErrorIs(t, err, errOutage)
	assert.Equal(t, StatusReserved, o.Status)

	now = now.Add(time.Minute)
	o, err = r.Run(t.Context(), "o1")
	require.NoError(t, err)
	assert.Equal(t, StatusCancelled, o.Status)
	assert.Contains(t, o.Reason, "provider unreachable")
	assert.Equal(t, inventory.Level{Available: 3, Total: 3}, f.level(t))
}

var errOutage = errors.New("provider unreachable")

type outage struct{}

func (outage) Charge(context.Context, string, int64) (string, error) { return "", errOutage }
func (outage) Refund(context.Context, string) error                  { return nil }

// A history with a gap, a foreign event or an event after the end is
// refused rather than replayed into a wrong state.
func TestReplayRejectsBadHistory(t *testing.T) {
	placed := Event{Order: "o1", Seq: 1, Type: Placed, User: "ann"}
	for name, events := range map[string][]Event{
		"gap":           {placed, {Order: "o1", Seq: 3, Type: StockReserved}},
		"other order":   {placed, {Order: "o2", Seq: 2, Type: StockReserved}},
		"after the end": {placed, {Order: "o1", Seq: 2, Type: Failed}, {Order: "o1", Seq: 3, Type: StockReserved}},
		"no placed":     {{Order: "o1", Seq: 1, Type: StockReserved}},
		"unknown type":  {placed, {Order: "o1", Seq: 2, Type: "teleported"}},
	} {
		_, err := Replay(events)
		assert.ErrorIs(t, err, ErrHistory, name)
	}
}
