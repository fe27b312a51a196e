package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
)

// Payments charges and refunds, idempotently per key: charging a key twice
// charges once and returns the first charge's id; refunding a key refunds
// its charge once, and refunding a key never charged is a no-op that also
// bars a late charge with that key. A definitive refusal wraps ErrDeclined.
type Payments interface {
	Charge(ctx context.Context, key string, amount int64) (string, error)
	Refund(ctx context.Context, key string) error
}

// Shipping creates and cancels shipments, idempotently per order. A
// definitive refusal wraps ErrDeclined.
type Shipping interface {
	Ship(ctx context.Context, order string, lines []Line) (string, error)
	Cancel(ctx context.Context, order string) error
}

// ErrDeclined marks a step's failure as final (a card declined, an address
// refused): the saga compensates instead of retrying.
var ErrDeclined = errors.New("order: declined")

// Services are the three participants of the saga.
type Services struct {
	Stock    inventory.Store
	Payments Payments
	Shipping Shipping
}

// permanent reports whether a step's error ends the forward path.
func permanent(err error) bool {
	return errors.Is(err, ErrDeclined) || errors.Is(err, inventory.ErrOutOfStock) ||
		errors.Is(err, inventory.ErrNoHold) || errors.Is(err, inventory.ErrUnknownProduct) ||
		errors.Is(err, inventory.ErrInvalid)
}

// rank orders the forward statuses, to know which steps may have run.
func rank(s Status) int {
	switch s {
	case StatusPlaced:
		return 1
	case StatusReserved:
		return 2
	case StatusCharged:
		return 3
	case StatusShipped:
		return 4
	}
	return 0
}

// The participants of the saga, which own its steps.
const (
	byStock    = "stock"
	byPayments = "payments"
	byShipping = "shipping"
)

// action is an order's next step: who runs it, and how.
type action struct {
	owner string
	run   func(ctx context.Context, svc Services, o Order) (Event, error)
}

// next returns o's next step. Forward: reserve, charge, ship, then commit
// the stock. Compensating: undo in reverse only the steps that may have
// run (o.Stage), then record the failure.
func next(o Order) action {
	event := func(t Type, ref string) (Event, error) { return Event{Type: t, Ref: ref}, nil }
	switch o.Status {
	case StatusPlaced:
		return action{byStock, func(ctx context.Context, svc Services, o Order) (Event, error) {
			for _, l := range o.Lines {
				if err := svc.Stock.Reserve(ctx, l.Product, o.ID, l.Qty); err != nil {
					return Event{}, err
				}
			}
			return event(StockReserved, "")
		}}
	case StatusReserved:
		return action{byPayments, func(ctx context.Context, svc Services, o Order) (Event, error) {
			id, err := svc.Payments.Charge(ctx, o.ID, o.Amount())
			if err != nil {
				return Event{}, err
			}
			return event(PaymentCharged, id)
		}}
	case StatusCharged:
		return action{byShipping, func(ctx context.Context, svc Services, o Order) (Event, error) {
			id, err := svc.Shipping.Ship(ctx, o.ID, o.Lines)
			if err != nil {
				return Event{}, err
			}
			return event(ShipmentCreated, id)
		}}
	case StatusShipped:
		return action{byStock, func(ctx context.Context, svc Services, o Order) (Event, error) {
			for _, l := range o.Lines {
				if err := svc.Stock.Commit(ctx, l.Product, o.ID); err != nil {
					return Event{}, err
				}
			}
			// Completed carries the lines, for consumers of sales.
			return Event{Type: Completed, Lines: o.Lines}, nil
		}}
	case StatusCompensating:
		switch {
		case !o.Cancelled && rank(o.Stage) >= rank(StatusCharged):
			return action{byShipping, func(ctx context.Context, svc Services, o Order) (Event, error) {
				if err := svc.Shipping.Cancel(ctx, o.ID); err != nil {
					return Event{}, err
				}
				return event(ShipmentCancelled, "")
			}}
		case !o.Refunded && rank(o.Stage) >= rank(StatusReserved):
			return action{byPayments, func(ctx context.Context, svc Services, o Order) (Event, error) {
				if err := svc.Payments.Refund(ctx, o.ID); err != nil {
					return Event{}, err
				}
				return event(PaymentRefunded, "")
			}}
		case !o.Released:
			return action{byStock, func(ctx context.Context, svc Services, o Order) (Event, error) {
				for _, l := range o.Lines {
					// An unknown product holds nothing to release.
					err := svc.Stock.Release(ctx, l.Product, o.ID)
					if err != nil && !errors.Is(err, inventory.ErrUnknownProduct) {
						return Event{}, err
					}
				}
				return event(StockReleased, "")
			}}
		}
		return action{byStock, func(_ context.Context, _ Services, o Order) (Event, error) {
			return Event{Type: Failed, Reason: o.Reason}, nil
		}}
	}
	return action{"", func(context.Context, Services, Order) (Event, error) {
		return Event{}, fmt.Errorf("%w: no step from status %q of %q", ErrHistory, o.Status, o.ID)
	}}
}

// advance runs o's next step and returns the event to record: the step's
// own, or Compensating when the step failed for good or o has failed for
// longer than giveUp. Any other failure is returned.
func advance(ctx context.Context, svc Services, o Order, now time.Time, giveUp time.Duration) (Event, error) {
	e, err := next(o).run(ctx, svc, o)
	if err != nil {
		if giveUp == 0 {
			giveUp = time.Minute
		}
		if o.Status == StatusCompensating || (!permanent(err) && now.Sub(o.Created) < giveUp) {
			return Event{}, fmt.Errorf("order: %s of %q: %w", o.Status, o.ID, err)
		}
		e = Event{Type: Compensating, Reason: err.Error()}
	}
	e.At = now
	return e, nil
}

// now returns the time from clock (nil: time.Now) in the form a replay
// from disk gives back: UTC, without a monotonic reading.
func now(clock func() time.Time) time.Time {
	if clock == nil {
		clock = time.Now
	}
	return clock().UTC().Round(0)
}

// Orchestrator runs each order's saga from one place: it reads the order's
// state from the [Log], runs the next step, records its event, and repeats
// until the order completes or fails. Because all it knows is in the log,
// a new orchestrator on the same log after a crash resumes where the old
// one stopped ([Orchestrator.Recover]).
//
// Orchestrator is safe for concurrent use; two orchestrators driving the
// same order conflict on the log's version check, and one backs off.
type Orchestrator struct {
	log *Log
	svc Services
	// GiveUp is how long an order may keep failing a forward step for a
	// reason that is not final (a timeout, an outage) before the saga
	// compensates it. Zero means one minute.
	GiveUp time.Duration
	// Now is the clock for events and GiveUp; nil means time.Now.
	Now func() time.Time
}

// NewOrchestrator returns an orchestrator for the orders in log.
func NewOrchestrator(log *Log, svc Services) *Orchestrator {
	return &Orchestrator{log: log, svc: svc}
}

func (r *Orchestrator) now() time.Time { return now(r.Now) }

// Place records a new order and runs its saga. An order with id that
// exists already is not placed again: Place returns its state after
// running it on (an idempotent checkout).
func (r *Orchestrator) Place(ctx context.Context, id, user string, lines []Line) (Order, error) {
	_, err := r.log.Append(id, 0, Event{Type: Placed, User: user, Lines: lines, At: r.now()})
	if err != nil && !errors.Is(err, ErrConflict) {
		return Order{}, err
	}
	return r.Run(ctx, id)
}

// Run drives order id until it is final, and returns its state. A step that
// fails for good (out of stock, declined) or for longer than GiveUp starts
// the compensations; any other failure is returned with the order left
// where it is, for a later Run or Recover to continue.
func (r *Orchestrator) Run(ctx context.Context, id string) (Order, error) {
	o, err := r.log.Load(id)
	for err == nil && !o.Status.Final() {
		if err := ctx.Err(); err != nil {
			return o, err
		}
		var e Event
		if e, err = advance(ctx, r.svc, o, r.now(), r.GiveUp); err != nil {
			return o, err
		}
		o, err = r.log.Append(id, o.Version, e)
	}
	return o, err
}

// Recover runs every order the log holds unfinished — after a restart,
// those a crash interrupted — and returns the first error (the others still
// ran).
func (r *Orchestrator) Recover(ctx context.Context) error {
	ids, err := r.log.Active()
	if err != nil {
		return err
	}
	var first error
	for _, id := range ids {
		if _, err := r.Run(ctx, id); err != nil && first == nil {
			first = err
		}
	}
	return first
}
