package payment

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/shop/order"
	"github.com/sysdesign-go/sysdesign/resilience"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// With errors, lost answers and slow answers injected, the client retries
// — and the provider takes money once per order: every retry carries the
// same idempotency key. Runs in a synctest bubble: timeouts and backoff
// take no real time.
func TestRetriesNeverChargeTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewProvider(Faults{Errors: 0.2, Lost: 0.2, Slow: 0.1, SlowDelay: 500 * time.Millisecond, Seed: 7})
		c, err := NewClient(p, ClientOptions{BreakAfter: 1000})
		require.NoError(t, err)
		const orders = 100
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := map[string]string{}
		for i := range orders {
			wg.Go(func() {
				key := fmt.Sprintf("o%d", i)
				id, err := c.Charge(t.Context(), key, 1000)
				if err == nil {
					mu.Lock()
					ok[key] = id
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		st := p.Stats()
		assert.Greater(t, st.Calls, orders, "faults made the client retry")
		assert.NotEmpty(t, ok)
		assert.Less(t, len(ok), orders, "some orders ran out of attempts")
		settled := 0
		for i := range orders {
			if p.Settled(fmt.Sprintf("o%d", i)) {
				settled++
			}
		}
		assert.Equal(t, settled, st.Charges, "one charge per order that paid, however many attempts")
		for key := range ok {
			assert.True(t, p.Settled(key), key)
		}
	})
}

// A decline is final: not retried, not counted by the breaker, and seen by
// the saga as order.ErrDeclined.
func TestDeclineIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewProvider(Faults{Declines: 1})
		c, err := NewClient(p, ClientOptions{BreakAfter: 2})
		require.NoError(t, err)
		for i := range 5 {
			_, err := c.Charge(t.Context(), fmt.Sprint(i), 100)
			assert.ErrorIs(t, err, order.ErrDeclined)
		}
		assert.Equal(t, 5, p.Stats().Calls)
		assert.Equal(t, resilience.StateClosed, c.BreakerState())
	})
}

// A provider that always fails opens the breaker: calls then fail fast
// without reaching it, until BreakFor has passed.
func TestBreakerOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewProvider(Faults{Errors: 1})
		c, err := NewClient(p, ClientOptions{BreakAfter: 3, BreakFor: time.Second})
		require.NoError(t, err)
		// Three failed attempts trip the breaker; the fourth is refused.
		_, err = c.Charge(t.Context(), "a", 100)
		require.ErrorIs(t, err, resilience.ErrOpen)
		_, err = c.Charge(t.Context(), "b", 100)
		require.ErrorIs(t, err, resilience.ErrOpen)
		calls := p.Stats().Calls
		assert.Equal(t, 3, calls, "the breaker stopped the attempts")
		_, err = c.Charge(t.Context(), "c", 100)
		require.ErrorIs(t, err, resilience.ErrOpen)
		assert.Equal(t, calls, p.Stats().Calls, "an open breaker calls nothing")
		time.Sleep(time.Second)
		_, _ = c.Charge(t.Context(), "d", 100)
		assert.Greater(t, p.Stats().Calls, calls, "half-open lets a probe through")
	})
}

// Bad keys are refused by name; a refund is once; a refunded key cannot be
// charged again; duplicate callbacks carry the same charge.
func TestIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var cbs []Callback
	p := NewProvider(Faults{Duplicates: 1})
	p.Notify = func(cb Callback) { mu.Lock(); cbs = append(cbs, cb); mu.Unlock() }
	c, err := NewClient(p, ClientOptions{})
	require.NoError(t, err)

	id, err := c.Charge(ctx, "k", 500)
	require.NoError(t, err)
	again, err := c.Charge(ctx, "k", 500)
	require.NoError(t, err)
	assert.Equal(t, id, again, "a replayed key returns the first charge")
	_, err = c.Charge(ctx, "k", 501)
	assert.ErrorIs(t, err, ErrKeyReused)
	assert.ErrorIs(t, err, order.ErrDeclined)
	assert.ErrorContains(t, err, "501")
	_, err = c.Charge(ctx, "", 500)
	assert.ErrorIs(t, err, order.ErrDeclined)
	_, err = c.Charge(ctx, "z", -1)
	assert.ErrorIs(t, err, order.ErrDeclined)

	require.NoError(t, c.Refund(ctx, "k"))
	require.NoError(t, c.Refund(ctx, "k"))
	_, err = c.Charge(ctx, "k", 500)
	assert.ErrorIs(t, err, order.ErrDeclined, "a refunded key is spent")
	require.NoError(t, c.Refund(ctx, "never"))
	_, err = c.Charge(ctx, "never", 500)
	assert.ErrorIs(t, err, order.ErrDeclined, "a refund before a late charge bars it")

	st := p.Stats()
	assert.Equal(t, 1, st.Charges)
	assert.Equal(t, 1, st.Refunds)
	assert.Equal(t, []Callback{
		{Key: "k", ChargeID: id, Amount: 500, Status: "charged"},
		{Key: "k", ChargeID: id, Amount: 500, Status: "charged"},
		{Key: "k", ChargeID: id, Amount: 500, Status: "refunded"},
	}, cbs)
}
