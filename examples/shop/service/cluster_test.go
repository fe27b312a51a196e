package service

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/shop/payment"
)

// Three instances behind the balancer, one killed: every checkout still
// succeeds. A client retries a request that met the dead instance (a 502
// before the health check ejects it) — safe for the cart (a PUT) and for
// the checkout (its Idempotency-Key).
func TestClusterSurvivesKilledInstance(t *testing.T) {
	e := newEnv(t, 3, nil)
	retry := func(method, path string, body any, headers ...string) int {
		for range 20 {
			code, _, _ := e.call(method, path, body, headers...)
			if code < 500 {
				return code
			}
			time.Sleep(20 * time.Millisecond)
		}
		return 0
	}
	buy := func(user string) int {
		tok := e.token(user)
		retry("PUT", "/api/v1/carts/"+userCart(user)+"/items/beans", map[string]int{"qty": 1}, bearer(tok)...)
		return retry("POST", "/api/v1/checkout", map[string]any{"cart": userCart(user), "total": 1200}, append(bearer(tok), "Idempotency-Key", "k")...)
	}
	assert.Equal(t, http.StatusCreated, buy("u1"))
	require.NoError(t, e.cluster.Kill(1))
	for i := range 4 {
		// 200 when a retry replayed a checkout that had gone through.
		assert.Contains(t, []int{http.StatusCreated, http.StatusOK}, buy(fmt.Sprintf("v%d", i)))
	}
	l, err := e.shop.Stock().Level(context.Background(), "beans")
	require.NoError(t, err)
	assert.Equal(t, 5, l.Sold, "each buyer bought once")
}

// The process dies mid-saga — the payment provider is unreachable, so
// orders stop after reserving stock. The shop reopened on the same disk
// finds them in its logs and, the provider back, finishes them: none is
// left unfinished and none is charged twice.
func TestRestartResumesOrders(t *testing.T) {
	e := newEnv(t, 1, func(c *Config) {
		c.Provider = payment.NewProvider(payment.Faults{Errors: 1})
		c.Payments = payment.ClientOptions{Attempts: 1, BreakAfter: 1000}
		c.RecoverEvery = time.Hour // only the restart recovers
	})
	for i := range 3 {
		user := fmt.Sprintf("u%d", i)
		tok := e.token(user)
		e.call("PUT", "/api/v1/carts/"+userCart(user)+"/items/mug", map[string]int{"qty": 1}, bearer(tok)...)
		code, _, o := e.call("POST", "/api/v1/checkout", map[string]any{"cart": userCart(user), "total": 900}, append(bearer(tok), "Idempotency-Key", "k")...)
		require.Equal(t, http.StatusAccepted, code, "%v", o)
		assert.Equal(t, "reserved", o["status"])
	}
	ids, err := e.shop.Unfinished()
	require.NoError(t, err)
	require.Len(t, ids, 3)
	e.stop()

	provider := payment.NewProvider(payment.Faults{})
	e.start(1, func(c *Config) { c.Provider = provider })
	deadline := time.Now().Add(5 * time.Second)
	for {
		ids, err = e.shop.Unfinished()
		require.NoError(t, err)
		if len(ids) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.Empty(t, ids, "every order finished after the restart")
	assert.Equal(t, 3, provider.Stats().Charges)
	l, err := e.shop.Stock().Level(context.Background(), "mug")
	require.NoError(t, err)
	assert.Equal(t, 3, l.Sold)
	assert.True(t, l.Consistent())
}
