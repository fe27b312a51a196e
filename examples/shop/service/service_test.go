package service

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
)

// A guest fills a cart, logs in (the cart merges into the user's), checks
// out; the order completes, stock is sold, the order list and the
// recommendations catch up from the event stream, and the metrics count
// the sale.
func TestShoppingJourney(t *testing.T) {
	e := newEnv(t, 1, nil)
	code, _, res := e.call("GET", "/api/v1/products?q=coffee&facet=attr.color", nil)
	require.Equal(t, http.StatusOK, code, "%v", res)
	assert.EqualValues(t, 2, res["total"])
	assert.Equal(t, map[string]any{"blue": 1.0}, res["facets"].(map[string]any)["attrs.color"])

	code, _, sess := e.call("POST", "/api/v1/sessions", nil)
	require.Equal(t, http.StatusCreated, code)
	session, guest := sess["session"].(string), sess["cart"].(string)
	code, _, _ = e.call("PUT", "/api/v1/carts/"+guest+"/items/mug", map[string]int{"qty": 2}, "Shop-Session", session)
	require.Equal(t, http.StatusOK, code)
	code, _, _ = e.call("PUT", "/api/v1/carts/"+guest+"/items/beans", map[string]int{"qty": 1}, "Shop-Session", session)
	require.Equal(t, http.StatusOK, code)

	tok := e.token("ann")
	code, _, login := e.call("POST", "/api/v1/sessions/login", nil, append(bearer(tok), "Shop-Session", session)...)
	require.Equal(t, http.StatusOK, code)
	cart := login["cart"].(string)
	code, _, c := e.call("GET", "/api/v1/carts/"+cart, nil, bearer(tok)...)
	require.Equal(t, http.StatusOK, code)
	assert.EqualValues(t, 2*900+1200, c["total"])

	code, h, o := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 3000}, append(bearer(tok), "Idempotency-Key", "k1")...)
	require.Equal(t, http.StatusCreated, code, "%v", o)
	assert.Equal(t, "completed", o["status"])
	assert.NotEmpty(t, h.Get("RateLimit"), "IETF RateLimit header")
	assert.NotEmpty(t, h.Get("RateLimit-Policy"))
	id := o["id"].(string)

	l, err := e.shop.Stock().Level(t.Context(), "mug")
	require.NoError(t, err)
	assert.Equal(t, inventory.Level{Available: 3, Sold: 2, Total: 5}, l)
	code, _, c = e.call("GET", "/api/v1/carts/"+cart, nil, bearer(tok)...)
	require.Equal(t, http.StatusOK, code)
	assert.Empty(t, c["lines"], "a completed checkout empties the cart")

	eventually(t, func() bool {
		_, _, list := e.call("GET", "/api/v1/orders", nil, bearer(tok)...)
		orders, _ := list["orders"].([]any)
		return len(orders) == 1 && orders[0].(map[string]any)["status"] == "completed"
	}, "the order list shows the completed order")
	eventually(t, func() bool {
		_, _, r := e.call("GET", "/api/v1/products/mug/recommendations", nil)
		recs, _ := r["bought_together"].([]any)
		return len(recs) == 1 && recs[0].(map[string]any)["product"] == "beans"
	}, "beans are recommended with mugs")

	code, _, got := e.call("GET", "/api/v1/orders/"+id, nil, bearer(tok)...)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "completed", got["status"])
	code, _, _ = e.call("GET", "/api/v1/orders/"+id, nil, bearer(e.token("bob"))...)
	assert.Equal(t, http.StatusNotFound, code, "another user's order")

	resp, err := http.Get(e.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = fmt.Fprint(&sb, readAll(t, resp))
	assert.Contains(t, sb.String(), `shop_orders_total{by="checkout",status="completed"} 1`)
	assert.Contains(t, sb.String(), "shop_revenue_cents_total 3000")
}

// Every bad input of the list gets a 4xx problem+json naming the
// value, and leaves stock, carts and orders as they were.
func TestBadInput(t *testing.T) {
	e := newEnv(t, 1, nil)
	tok := e.token("ann")
	cart := userCart("ann")
	_, _, sess := e.call("POST", "/api/v1/sessions", nil)
	session, guest := sess["session"].(string), sess["cart"].(string)
	_, _, other := e.call("POST", "/api/v1/sessions", nil)
	auth := bearer(tok)

	cases := []struct {
		name    string
		method  string
		path    string
		body    any
		headers []string
		status  int
		code    string
	}{
		{"negative quantity", "PUT", "/api/v1/carts/" + cart + "/items/mug", `{"qty":-1}`, auth, 422, "invalid_quantity"},
		{"huge quantity", "PUT", "/api/v1/carts/" + cart + "/items/mug", `{"qty":1000000000000}`, auth, 422, "invalid_quantity"},
		{"too many", "PUT", "/api/v1/carts/" + cart + "/items/mug", `{"qty":101}`, auth, 422, "invalid_quantity"},
		{"unknown product", "PUT", "/api/v1/carts/" + cart + "/items/ghost", `{"qty":1}`, auth, 404, "unknown_product"},
		{"another session's cart", "PUT", "/api/v1/carts/" + other["cart"].(string) + "/items/mug", `{"qty":1}`, []string{"Shop-Session", session}, 404, "unknown_cart"},
		{"another user's cart", "GET", "/api/v1/carts/u-bob", nil, auth, 404, "unknown_cart"},
		{"no session", "GET", "/api/v1/carts/" + guest, nil, nil, 404, "unknown_cart"},
		{"malformed JSON", "PUT", "/api/v1/carts/" + cart + "/items/mug", `{"qty":`, auth, 400, "invalid_json"},
		{"unknown field", "PUT", "/api/v1/carts/" + cart + "/items/mug", `{"qty":1,"price":0}`, auth, 400, "invalid_json"},
		{"missing qty", "PUT", "/api/v1/carts/" + cart + "/items/mug", `{}`, auth, 400, "missing_field"},
		{"empty cart", "POST", "/api/v1/checkout", `{"cart":"` + cart + `","total":900}`, append(auth, "Idempotency-Key", "e1"), 422, "empty_cart"},
		{"no idempotency key", "POST", "/api/v1/checkout", `{"cart":"` + cart + `","total":900}`, auth, 400, "invalid_idempotency_key"},
		{"checkout of another cart", "POST", "/api/v1/checkout", `{"cart":"u-bob","total":900}`, append(auth, "Idempotency-Key", "e2"), 404, "unknown_cart"},
		{"checkout without token", "POST", "/api/v1/checkout", `{"cart":"` + cart + `","total":900}`, []string{"Idempotency-Key", "e3"}, 401, "missing_token"},
		{"negative restock", "POST", "/api/v1/products/mug/stock", `{"add":-5}`, bearer(e.admin), 422, "invalid_quantity"},
		{"restock without admin", "POST", "/api/v1/products/mug/stock", `{"add":5}`, auth, 403, "forbidden"},
		{"bad search limit", "GET", "/api/v1/products?limit=0", nil, nil, 400, "invalid_parameter"},
		{"bad price", "GET", "/api/v1/products?min_price=-3", nil, nil, 400, "invalid_parameter"},
		{"unknown facet", "GET", "/api/v1/products?facet=price", nil, nil, 422, "invalid"},
	}
	for _, tc := range cases {
		code, h, p := e.call(tc.method, tc.path, tc.body, tc.headers...)
		assert.Equal(t, tc.status, code, "%s: %v", tc.name, p)
		assert.Equal(t, "application/problem+json", h.Get("Content-Type"), tc.name)
		assert.Equal(t, tc.code, p["code"], "%s: %v", tc.name, p)
		assert.NotEmpty(t, p["detail"], tc.name)
	}

	// Nothing half-applied: stock untouched, carts empty, no order.
	l, err := e.shop.Stock().Level(t.Context(), "mug")
	require.NoError(t, err)
	assert.Equal(t, inventory.Level{Available: 5, Total: 5}, l)
	_, _, c := e.call("GET", "/api/v1/carts/"+cart, nil, auth...)
	assert.Empty(t, c["lines"])
	ids, err := e.shop.Unfinished()
	require.NoError(t, err)
	assert.Empty(t, ids)
	// The key of the refused empty checkout is free again.
	code, _, _ := e.call("PUT", "/api/v1/carts/"+cart+"/items/mug", map[string]int{"qty": 1}, auth...)
	require.Equal(t, http.StatusOK, code)
	code, _, p := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 800}, append(auth, "Idempotency-Key", "e1")...)
	assert.Equal(t, http.StatusConflict, code, "a stale total buys nothing")
	assert.Equal(t, "total_changed", p["code"])
	code, _, _ = e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 900}, append(auth, "Idempotency-Key", "e1")...)
	assert.Equal(t, http.StatusCreated, code)
}

// A replayed idempotency key returns the same order without buying again;
// the same key for another request is refused.
func TestCheckoutIdempotency(t *testing.T) {
	e := newEnv(t, 1, nil)
	tok := e.token("ann")
	cart := userCart("ann")
	auth := append(bearer(tok), "Idempotency-Key", "same")
	code, _, _ := e.call("PUT", "/api/v1/carts/"+cart+"/items/kettle", map[string]int{"qty": 1}, bearer(tok)...)
	require.Equal(t, http.StatusOK, code)
	code, _, first := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 3500}, auth...)
	require.Equal(t, http.StatusCreated, code)
	code, _, again := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 3500}, auth...)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, first["id"], again["id"])
	code, _, p := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 100}, auth...)
	assert.Equal(t, http.StatusUnprocessableEntity, code, "%v", p)
	assert.Equal(t, "idempotency_key_reused", p["code"])

	l, err := e.shop.Stock().Level(t.Context(), "kettle")
	require.NoError(t, err)
	assert.Equal(t, 1, l.Sold, "bought once")
	assert.Equal(t, 1, e.shop.cfg.Provider.Stats().Charges, "charged once")
}

// Payment callbacks: signed ones for a known order are recorded once, a
// duplicate is acknowledged without effect; unknown orders, wrong amounts
// and bad signatures are refused.
func TestPaymentCallback(t *testing.T) {
	e := newEnv(t, 1, nil)
	tok := e.token("ann")
	cart := userCart("ann")
	e.call("PUT", "/api/v1/carts/"+cart+"/items/mug", map[string]int{"qty": 1}, bearer(tok)...)
	_, _, o := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 900}, append(bearer(tok), "Idempotency-Key", "cb")...)
	id := o["id"].(string)
	send := func(body string, sig string) (int, map[string]any) {
		code, _, res := e.call("POST", "/api/v1/payments/callback", body, "X-Signature", sig)
		return code, res
	}
	body := fmt.Sprintf(`{"key":%q,"charge_id":"ch_1","amount":900,"status":"charged"}`, id)
	code, res := send(body, Sign(secret, []byte(body)))
	require.Equal(t, http.StatusOK, code, "%v", res)
	assert.Equal(t, false, res["duplicate"])
	code, res = send(body, Sign(secret, []byte(body)))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, true, res["duplicate"])

	code, res = send(body, Sign([]byte("another secret of enough bytes!!"), []byte(body)))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "invalid_signature", res["code"])
	unknown := `{"key":"o-000000000000000000000000","charge_id":"x","amount":900,"status":"charged"}`
	code, res = send(unknown, Sign(secret, []byte(unknown)))
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "unknown_order", res["code"])
	wrong := fmt.Sprintf(`{"key":%q,"charge_id":"ch_1","amount":1,"status":"charged"}`, id)
	code, res = send(wrong, Sign(secret, []byte(wrong)))
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Equal(t, "amount_mismatch", res["code"])
	bad := `{"key":`
	code, res = send(bad, Sign(secret, []byte(bad)))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "invalid_json", res["code"])
}

// Checkouts beyond a user's limit get 429 with Retry-After and the IETF
// headers, and buy nothing.
func TestCheckoutRateLimited(t *testing.T) {
	e := newEnv(t, 1, func(c *Config) { c.CheckoutLimit.Events, c.CheckoutLimit.Per, c.CheckoutLimit.Burst = 1, 3600e9, 1 })
	tok := e.token("ann")
	cart := userCart("ann")
	e.call("PUT", "/api/v1/carts/"+cart+"/items/mug", map[string]int{"qty": 1}, bearer(tok)...)
	code, _, _ := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 900}, append(bearer(tok), "Idempotency-Key", "a")...)
	require.Equal(t, http.StatusCreated, code)
	e.call("PUT", "/api/v1/carts/"+cart+"/items/mug", map[string]int{"qty": 1}, bearer(tok)...)
	code, h, p := e.call("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 900}, append(bearer(tok), "Idempotency-Key", "b")...)
	assert.Equal(t, http.StatusTooManyRequests, code, "%v", p)
	assert.NotEmpty(t, h.Get("Retry-After"))
	assert.NotEmpty(t, h.Get("RateLimit"))
	l, err := e.shop.Stock().Level(t.Context(), "mug")
	require.NoError(t, err)
	assert.Equal(t, 1, l.Sold)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

var _ = json.Marshal
