package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shop/catalog"
	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
	"github.com/sysdesign-go/sysdesign/examples/shop/order"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// SessionHeader carries a guest session id.
const SessionHeader = "Shop-Session"

// SignatureHeader carries a payment callback's HMAC-SHA256, hex.
const SignatureHeader = "X-Signature"

// Handler returns the shop's HTTP API:
//
//	GET  /api/v1/products?q=&category=&brand=&attr.<name>=&min_price=&max_price=&facet=&cursor=&limit=
//	GET  /api/v1/products/{id}                  (cached)
//	PUT  /api/v1/products/{id}                  admin: create or change
//	GET  /api/v1/products/{id}/stock
//	POST /api/v1/products/{id}/stock            admin: {"add": n}
//	GET  /api/v1/products/{id}/recommendations  bought together
//	POST /api/v1/sessions                       a guest session and cart
//	POST /api/v1/sessions/login                 user token + session: merge the guest cart
//	GET  /api/v1/carts/{cart}                   the caller's cart only
//	PUT  /api/v1/carts/{cart}/items/{product}   {"qty": n}, 0 removes
//	POST /api/v1/checkout                       user token, Idempotency-Key, {"cart": id, "total": cents}
//	GET  /api/v1/orders?cursor=&limit=          the user's orders (read model)
//	GET  /api/v1/orders/{id}                    one order, from its event log
//	POST /api/v1/payments/callback              signed by the provider
//	GET  /healthz, /metrics
func (s *Shop) Handler() http.Handler {
	mux := http.NewServeMux()
	admin := func(h http.HandlerFunc) http.Handler { return s.cfg.Tokens.Require(AdminRole, h) }
	user := func(h http.Handler) http.Handler { return s.cfg.Tokens.Require("", h) }
	mux.HandleFunc("GET /api/v1/products", s.search)
	mux.HandleFunc("GET /api/v1/products/{id}", s.product)
	mux.Handle("PUT /api/v1/products/{id}", admin(s.putProduct))
	mux.HandleFunc("GET /api/v1/products/{id}/stock", s.stock)
	mux.Handle("POST /api/v1/products/{id}/stock", admin(s.restock))
	mux.HandleFunc("GET /api/v1/products/{id}/recommendations", s.recommendations)
	mux.HandleFunc("POST /api/v1/sessions", s.newSession)
	mux.Handle("POST /api/v1/sessions/login", user(http.HandlerFunc(s.login)))
	mux.HandleFunc("GET /api/v1/carts/{cart}", s.getCart)
	mux.HandleFunc("PUT /api/v1/carts/{cart}/items/{product}", s.putItem)
	limit, _ := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: s.limiter, Policy: "checkout",
		Key: func(r *http.Request) (string, error) {
			id, _ := httpsec.IdentityFrom(r.Context())
			return id.Subject, nil
		},
	})
	mux.Handle("POST /api/v1/checkout", user(limit.Handler(http.HandlerFunc(s.checkout))))
	mux.Handle("GET /api/v1/orders", user(http.HandlerFunc(s.orders)))
	mux.Handle("GET /api/v1/orders/{id}", user(http.HandlerFunc(s.getOrder)))
	mux.HandleFunc("POST /api/v1/payments/callback", s.callback)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpsec.WriteProblem(w, problem(http.StatusNotFound, "not_found", "", "no route for %s %s", r.Method, truncate(r.URL.Path)))
	})
	sec, _ := httpsec.NewMiddleware(httpsec.Options{MaxBodyBytes: maxBody})
	return sec.Handler(s.metrics.instrument(mux))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail writes err: a *httpsec.Problem as it is, a known error as its 4xx,
// anything else as a 503 (a store unreachable) without internals.
func (s *Shop) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *httpsec.Problem
	switch {
	case errors.As(err, &p):
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, inventory.ErrUnknownProduct):
		p = problem(http.StatusNotFound, "unknown_product", "product", "%v", err)
	case errors.Is(err, catalog.ErrInvalid), errors.Is(err, inventory.ErrInvalid):
		p = problem(http.StatusUnprocessableEntity, "invalid", "", "%v", err)
	case errors.Is(err, order.ErrNotFound):
		p = problem(http.StatusNotFound, "unknown_order", "", "%v", err)
	default:
		s.cfg.Logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err, "request_id", httpsec.RequestID(r.Context()))
		p = problem(http.StatusServiceUnavailable, "unavailable", "", "the shop cannot answer now; retry later")
		w.Header().Set("Retry-After", "1")
	}
	httpsec.WriteProblem(w, p)
}

func (s *Shop) search(w http.ResponseWriter, r *http.Request) {
	q, err := searchQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.catalog.Search(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Shop) product(w http.ResponseWriter, r *http.Request) {
	p, err := s.catalog.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p)
}

func (s *Shop) putProduct(w http.ResponseWriter, r *http.Request) {
	var p catalog.Product
	if err := decodeJSON(r, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.ID != r.PathValue("id") {
		s.fail(w, r, problem(http.StatusBadRequest, "id_mismatch", "id", "body id %q differs from the path's %q", truncate(p.ID), truncate(r.PathValue("id"))))
		return
	}
	if err := s.catalog.Put(r.Context(), p); err != nil {
		s.fail(w, r, err)
		return
	}
	httpsec.Audit(s.cfg.Logger, r, "put_product", slogString("product", p.ID))
	writeJSON(w, http.StatusOK, p)
}

func (s *Shop) stock(w http.ResponseWriter, r *http.Request) {
	l, err := s.cfg.Stock.Level(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Shop) restock(w http.ResponseWriter, r *http.Request) {
	var req stockRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if _, err := s.catalog.Get(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Add <= 0 || req.Add > inventory.MaxQuantity {
		s.fail(w, r, problem(http.StatusUnprocessableEntity, "invalid_quantity", "add", "add %d is outside 1..%d", req.Add, inventory.MaxQuantity))
		return
	}
	if err := s.cfg.Stock.Restock(r.Context(), id, req.Add); err != nil {
		s.fail(w, r, err)
		return
	}
	httpsec.Audit(s.cfg.Logger, r, "restock", slogString("product", id), slogString("add", strconv.Itoa(req.Add)))
	s.stock(w, r)
}

func (s *Shop) recommendations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.catalog.Get(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	recs, err := s.recs.top(r.Context(), id, 5)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product": id, "bought_together": recs})
}

func (s *Shop) newSession(w http.ResponseWriter, r *http.Request) {
	session, cart, err := s.carts.newSession(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"session": session, "cart": cart})
}

// login merges the session's guest cart into the user's.
func (s *Shop) login(w http.ResponseWriter, r *http.Request) {
	id, _ := httpsec.IdentityFrom(r.Context())
	guest, err := s.carts.sessionCart(r.Context(), r.Header.Get(SessionHeader))
	if err != nil {
		s.fail(w, r, sessionProblem(err))
		return
	}
	if err := s.carts.merge(r.Context(), guest, userCart(id.Subject)); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"cart": userCart(id.Subject)})
}

func sessionProblem(err error) error {
	if errors.Is(err, errNoSession) {
		return problem(http.StatusUnauthorized, "invalid_session", SessionHeader, "the %s header names no live session", SessionHeader)
	}
	return err
}

// ownCart checks that cart belongs to the caller — the user of a valid
// bearer token, or the session of the Shop-Session header — and answers
// 404 otherwise, so another session's cart is indistinguishable from none.
func (s *Shop) ownCart(r *http.Request, cart string) error {
	notFound := problem(http.StatusNotFound, "unknown_cart", "cart", "no cart %q of yours", truncate(cart))
	if !cartRE.MatchString(cart) {
		return notFound
	}
	if strings.HasPrefix(cart, "u-") {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return notFound
		}
		id, err := s.cfg.Tokens.Verify(strings.TrimSpace(raw))
		if err != nil || userCart(id.Subject) != cart {
			return notFound
		}
		return nil
	}
	own, err := s.carts.sessionCart(r.Context(), r.Header.Get(SessionHeader))
	if errors.Is(err, errNoSession) || (err == nil && own != cart) {
		return notFound
	}
	return err
}

// cartLine is one line of a cart, priced from the catalog.
type cartLine struct {
	Product string `json:"product"`
	Qty     int    `json:"qty"`
	Price   int64  `json:"price"`
}

func (s *Shop) cartLines(ctx context.Context, cart string) ([]cartLine, int64, error) {
	m, err := s.carts.lines(ctx, cart)
	if err != nil {
		return nil, 0, err
	}
	lines := make([]cartLine, 0, len(m))
	var total int64
	for p, q := range m {
		prod, err := s.catalog.Get(ctx, p)
		if err != nil {
			return nil, 0, err
		}
		lines = append(lines, cartLine{Product: p, Qty: q, Price: prod.Price})
		total += prod.Price * int64(q)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].Product < lines[j].Product })
	return lines, total, nil
}

func (s *Shop) getCart(w http.ResponseWriter, r *http.Request) {
	cart := r.PathValue("cart")
	if err := s.ownCart(r, cart); err != nil {
		s.fail(w, r, err)
		return
	}
	lines, total, err := s.cartLines(r.Context(), cart)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cart": cart, "lines": lines, "total": total})
}

func (s *Shop) putItem(w http.ResponseWriter, r *http.Request) {
	cart, product := r.PathValue("cart"), r.PathValue("product")
	if err := s.ownCart(r, cart); err != nil {
		s.fail(w, r, err)
		return
	}
	var req itemRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.catalog.Get(r.Context(), product); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.carts.setLine(r.Context(), cart, product, *req.Qty); err != nil {
		if errors.Is(err, errCartFull) {
			err = problem(http.StatusUnprocessableEntity, "cart_full", "product", "%v", err)
		}
		s.fail(w, r, err)
		return
	}
	s.getCart(w, r)
}

// OrderID derives the order id from the user and the checkout's
// idempotency key, so a replayed checkout names the same order.
func OrderID(user, key string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + key))
	return "o-" + hex.EncodeToString(sum[:12])
}

func (s *Shop) checkout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := httpsec.IdentityFrom(ctx)
	key := r.Header.Get("Idempotency-Key")
	if !keyRE.MatchString(key) {
		s.fail(w, r, problem(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key", "Idempotency-Key %q: 1 to 64 of A-Z a-z 0-9 _ -", truncate(key)))
		return
	}
	var req checkoutRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Cart != userCart(id.Subject) {
		s.fail(w, r, problem(http.StatusNotFound, "unknown_cart", "cart", "no cart %q of yours", req.Cart))
		return
	}
	oid := OrderID(id.Subject, key)
	sh := s.shardOf(oid)
	// The key is claimed with the request's fingerprint; a replay with the
	// same request gets the same order, another request with it a 422.
	idem := s.cfg.Prefix + "idem:" + oid
	claimed, err := s.cfg.Redis.SetNX(ctx, idem, req.fingerprint(), 24*time.Hour).Result()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !claimed {
		fp, err := s.cfg.Redis.Get(ctx, idem).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			s.fail(w, r, err)
			return
		}
		if fp != req.fingerprint() {
			s.fail(w, r, problem(http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key",
				"Idempotency-Key %q was used for another request", key))
			return
		}
		// A claim with no order yet is a checkout that failed before
		// placing it (or is placing it now): go on, since placing is
		// idempotent by order id.
		o, err := sh.log.Load(oid)
		if err == nil {
			writeJSON(w, http.StatusOK, o)
			return
		}
		if !errors.Is(err, order.ErrNotFound) {
			s.fail(w, r, err)
			return
		}
	}
	release := func() { _ = s.cfg.Redis.Del(context.WithoutCancel(ctx), idem).Err() }
	lines, total, err := s.cartLines(ctx, req.Cart)
	if err != nil {
		release()
		if errors.Is(err, catalog.ErrNotFound) {
			err = problem(http.StatusUnprocessableEntity, "unknown_product", "cart", "%v", err)
		}
		s.fail(w, r, err)
		return
	}
	if len(lines) == 0 {
		release()
		s.fail(w, r, problem(http.StatusUnprocessableEntity, "empty_cart", "cart", "cart %q is empty", req.Cart))
		return
	}
	if total != req.Total {
		release()
		s.fail(w, r, problem(http.StatusConflict, "total_changed", "total", "the cart now totals %d, not %d", total, req.Total))
		return
	}
	ol := make([]order.Line, len(lines))
	for i, l := range lines {
		ol[i] = order.Line(l)
	}
	start := time.Now()
	o, err := sh.orch.Place(context.WithoutCancel(ctx), oid, id.Subject, ol)
	s.metrics.checkout.Observe(time.Since(start).Seconds())
	if err != nil {
		// The order is recorded and the recovery sweep will finish it.
		s.cfg.Logger.Warn("checkout unfinished", "order", oid, "err", err)
		w.Header().Set("Location", "/api/v1/orders/"+oid)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, o)
		return
	}
	s.metrics.finished(o, "checkout")
	if o.Status == order.StatusDone {
		_ = s.carts.clear(ctx, req.Cart)
	}
	w.Header().Set("Location", "/api/v1/orders/"+oid)
	writeJSON(w, http.StatusCreated, o)
}

func (s *Shop) orders(w http.ResponseWriter, r *http.Request) {
	id, _ := httpsec.IdentityFrom(r.Context())
	limit := 20
	if x := r.URL.Query().Get("limit"); x != "" {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > 100 {
			s.fail(w, r, problem(http.StatusBadRequest, "invalid_parameter", "limit", "limit %q is outside 1..100", truncate(x)))
			return
		}
		limit = n
	}
	cursor := r.URL.Query().Get("cursor")
	if len(cursor) > 100 {
		s.fail(w, r, problem(http.StatusBadRequest, "invalid_parameter", "cursor", "cursor of %d bytes", len(cursor)))
		return
	}
	list, next, err := s.list.List(r.Context(), id.Subject, cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": list, "next": next})
}

func (s *Shop) getOrder(w http.ResponseWriter, r *http.Request) {
	id, _ := httpsec.IdentityFrom(r.Context())
	oid := r.PathValue("id")
	notFound := problem(http.StatusNotFound, "unknown_order", "id", "no order %q of yours", truncate(oid))
	if !orderIDRE.MatchString(oid) {
		s.fail(w, r, notFound)
		return
	}
	o, err := s.shardOf(oid).log.Load(oid)
	if errors.Is(err, order.ErrNotFound) || (err == nil && o.User != id.Subject) {
		s.fail(w, r, notFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// callback records a provider's notice: the signature must verify, the
// order must exist with that amount; a duplicate is acknowledged and
// changes nothing.
func (s *Shop) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		s.fail(w, r, problem(http.StatusRequestEntityTooLarge, "body_too_large", "", "the body exceeds %d bytes", maxBody))
		return
	}
	if !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(Sign(s.cfg.CallbackSecret, body))) {
		s.fail(w, r, problem(http.StatusUnauthorized, "invalid_signature", SignatureHeader, "the %s header does not sign the body", SignatureHeader))
		return
	}
	var cb callbackRequest
	if err := decodeBytes(body, &cb); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := cb.validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	o, err := s.shardOf(cb.Key).log.Load(cb.Key)
	if errors.Is(err, order.ErrNotFound) {
		s.fail(w, r, problem(http.StatusNotFound, "unknown_order", "key", "no order %q", cb.Key))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if o.Amount() != cb.Amount {
		s.fail(w, r, problem(http.StatusUnprocessableEntity, "amount_mismatch", "amount", "order %q is %d, not %d", cb.Key, o.Amount(), cb.Amount))
		return
	}
	first, err := s.cfg.Redis.SetNX(r.Context(), s.cfg.Prefix+"callback:"+cb.Key+":"+cb.Status, cb.ChargeID, 24*time.Hour).Result()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	source := "http"
	if !first {
		source = "duplicate"
	}
	s.metrics.callbacks.WithLabelValues(cb.Status, source).Inc()
	writeJSON(w, http.StatusOK, map[string]any{"order": cb.Key, "status": cb.Status, "duplicate": !first})
}

// Sign returns the X-Signature of a callback body under secret, as the
// provider computes it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
