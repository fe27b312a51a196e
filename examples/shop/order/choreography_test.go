package order

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
)

// waitFinal polls the log until order id is final.
func waitFinal(t *testing.T, l *Log, id string) Order {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err := l.Load(id)
		if err == nil && o.Status.Final() {
			return o
		}
		require.True(t, time.Now().Before(deadline), "order %s not final: %+v %v", id, o, err)
		time.Sleep(5 * time.Millisecond)
	}
}

// With no coordinator, the participants carry an order through the same
// events as the orchestrator — and through the same compensations when a
// payment is declined.
func TestChoreography(t *testing.T) {
	f := newFixture(t)
	stream := f.db.Key("events")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { _ = NewRelay(f.log, f.db.Client, stream).Run(ctx, 10*time.Millisecond) })
	c := NewChoreography(f.log, Services{Stock: f.stock, Payments: f.pay, Shipping: f.ship}, f.db.Client, stream)
	wg.Go(func() { _ = c.Run(ctx) })

	require.NoError(t, c.Place("good", "ann", []Line{{Product: "book", Qty: 1, Price: 900}}))
	o := waitFinal(t, f.log, "good")
	assert.Equal(t, StatusDone, o.Status)
	assert.Equal(t, "ch_good", o.Charge)

	f.pay.mu.Lock()
	f.pay.decline = true
	f.pay.mu.Unlock()
	require.NoError(t, c.Place("bad", "bob", twoBooks))
	o = waitFinal(t, f.log, "bad")
	assert.Equal(t, StatusCancelled, o.Status)
	_, events, err := f.log.History("bad")
	require.NoError(t, err)
	var types []Type
	for _, e := range events {
		types = append(types, e.Type)
	}
	assert.Equal(t, []Type{Placed, StockReserved, Compensating, PaymentRefunded, StockReleased, Failed}, types)
	assert.Equal(t, inventory.Level{Available: 2, Sold: 1, Total: 3}, f.level(t))
	f.pay.mu.Lock()
	assert.Equal(t, 1, f.pay.charged["good"])
	assert.Zero(t, f.pay.charged["bad"])
	f.pay.mu.Unlock()
}
