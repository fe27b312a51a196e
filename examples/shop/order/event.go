package order

import (
	"errors"
	"fmt"
	"time"
)

// Type names what happened to an order.
type Type string

// The events of an order's life. Placed starts it; Completed and Failed end
// it. Compensating records the decision to undo, with its reason; the three
// compensations follow, then Failed.
const (
	Placed            Type = "placed"
	StockReserved     Type = "stock_reserved"
	PaymentCharged    Type = "payment_charged"
	ShipmentCreated   Type = "shipment_created"
	Completed         Type = "completed"
	Compensating      Type = "compensating"
	ShipmentCancelled Type = "shipment_cancelled"
	PaymentRefunded   Type = "payment_refunded"
	StockReleased     Type = "stock_released"
	Failed            Type = "failed"
)

// Line is one product of an order.
type Line struct {
	Product string `json:"product"`
	Qty     int    `json:"qty"`
	Price   int64  `json:"price"` // per unit, in cents
}

// Event is one fact in an order's history.
type Event struct {
	Order string    `json:"order"`
	Seq   int       `json:"seq"` // 1 for Placed, then one more per event
	Type  Type      `json:"type"`
	At    time.Time `json:"at"`
	// User is the order's buyer, on every event so that a consumer keyed
	// by user needs no lookup.
	User string `json:"user"`
	// Lines, on Placed and Completed, are what was ordered (Completed
	// carries them so that consumers of sales need no lookup).
	Lines []Line `json:"lines,omitempty"`
	// Ref is the charge id (PaymentCharged) or shipment id
	// (ShipmentCreated).
	Ref string `json:"ref,omitempty"`
	// Reason says why (Compensating, Failed).
	Reason string `json:"reason,omitempty"`
}

// Status is where an order stands.
type Status string

// Order statuses. Only Done and Cancelled are final.
const (
	StatusPlaced       Status = "placed"
	StatusReserved     Status = "reserved"
	StatusCharged      Status = "charged"
	StatusShipped      Status = "shipped"
	StatusDone         Status = "completed"
	StatusCompensating Status = "compensating"
	StatusCancelled    Status = "failed"
)

// Final reports whether no step remains.
func (s Status) Final() bool { return s == StatusDone || s == StatusCancelled }

// Order is an order's state, rebuilt from its events by [Replay].
type Order struct {
	ID       string `json:"id"`
	User     string `json:"user"`
	Lines    []Line `json:"lines"`
	Status   Status `json:"status"`
	Charge   string `json:"charge,omitempty"`
	Shipment string `json:"shipment,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Stage is the last forward status reached; while compensating it says
	// which steps may have run and need undoing.
	Stage   Status    `json:"stage"`
	Version int       `json:"version"` // the Seq of the last event
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	// Compensations done, while Compensating.
	Cancelled, Refunded, Released bool `json:"-"`
}

// Amount is the order's total in cents.
func (o Order) Amount() int64 {
	var sum int64
	for _, l := range o.Lines {
		sum += l.Price * int64(l.Qty)
	}
	return sum
}

// ErrHistory: events that do not form an order's history (a gap, another
// order's event, an event after the end).
var ErrHistory = errors.New("order: invalid history")

// Apply returns o after e. It refuses an event out of sequence, so a state
// is only ever built from a complete history.
func (o Order) Apply(e Event) (Order, error) {
	if e.Seq != o.Version+1 || (o.ID != "" && e.Order != o.ID) {
		return o, fmt.Errorf("%w: event %d (%s) of %q after version %d of %q", ErrHistory, e.Seq, e.Type, e.Order, o.Version, o.ID)
	}
	if o.Status.Final() {
		return o, fmt.Errorf("%w: event %s after %s of %q", ErrHistory, e.Type, o.Status, o.ID)
	}
	if (e.Seq == 1) != (e.Type == Placed) {
		return o, fmt.Errorf("%w: event %d of %q is %s", ErrHistory, e.Seq, e.Order, e.Type)
	}
	o.Version, o.Updated = e.Seq, e.At
	if s := statusAfter(e.Type); s != "" {
		o.Status = s
		if rank(s) > 0 {
			o.Stage = s
		}
	}
	switch e.Type {
	case Placed:
		o.ID, o.User, o.Lines, o.Created = e.Order, e.User, e.Lines, e.At
	case PaymentCharged:
		o.Charge = e.Ref
	case ShipmentCreated:
		o.Shipment = e.Ref
	case Compensating, Failed:
		o.Reason = e.Reason
	case ShipmentCancelled:
		o.Cancelled = true
	case PaymentRefunded:
		o.Refunded = true
	case StockReleased:
		o.Released = true
	case StockReserved, Completed:
	default:
		return o, fmt.Errorf("%w: unknown event type %q", ErrHistory, e.Type)
	}
	return o, nil
}

// statusAfter is the status an event of type t moves an order to; ""
// for the compensation steps, which leave it Compensating.
func statusAfter(t Type) Status {
	switch t {
	case Placed:
		return StatusPlaced
	case StockReserved:
		return StatusReserved
	case PaymentCharged:
		return StatusCharged
	case ShipmentCreated:
		return StatusShipped
	case Completed:
		return StatusDone
	case Compensating:
		return StatusCompensating
	case Failed:
		return StatusCancelled
	}
	return ""
}

// Replay rebuilds an order from its whole history.
func Replay(events []Event) (Order, error) {
	var o Order
	for _, e := range events {
		var err error
		if o, err = o.Apply(e); err != nil {
			return o, err
		}
	}
	return o, nil
}
