package service

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shop/catalog"
)

// maxBody bounds every request body.
const maxBody = 16 << 10

// keyRE is what an Idempotency-Key may be.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func problem(status int, code, field, format string, args ...any) *httpsec.Problem {
	return &httpsec.Problem{Status: status, Code: code, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// decodeJSON reads one JSON object from r's body into v: an
// application/json body of at most maxBody bytes, no unknown field,
// nothing after the object.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type", "the body must be application/json, not %q", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return problem(http.StatusBadRequest, "unreadable_body", "", "reading the body: %v", err)
	}
	if len(body) > maxBody {
		return problem(http.StatusRequestEntityTooLarge, "body_too_large", "", "the body exceeds %d bytes", maxBody)
	}
	return decodeBytes(body, v)
}

// decodeBytes is decodeJSON's parser, apart for the fuzz test.
func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return problem(http.StatusBadRequest, "invalid_json", ute.Field, "field %q must be %s", ute.Field, ute.Type)
		}
		return problem(http.StatusBadRequest, "invalid_json", "", "malformed JSON: %v", err)
	}
	if dec.More() {
		return problem(http.StatusBadRequest, "invalid_json", "", "the body holds more than one JSON value")
	}
	return nil
}

// itemRequest sets a cart line.
type itemRequest struct {
	Qty *int `json:"qty"`
}

func (q itemRequest) validate() error {
	switch {
	case q.Qty == nil:
		return problem(http.StatusBadRequest, "missing_field", "qty", "qty is required (0 removes the product)")
	case *q.Qty < 0 || *q.Qty > maxLineQty:
		return problem(http.StatusUnprocessableEntity, "invalid_quantity", "qty", "qty %d is outside 0..%d", *q.Qty, maxLineQty)
	}
	return nil
}

// checkoutRequest buys a cart at the total the buyer saw: if prices
// changed since, the checkout is refused rather than charging more.
type checkoutRequest struct {
	Cart  string `json:"cart"`
	Total int64  `json:"total"`
}

func (c checkoutRequest) validate() error {
	if !cartRE.MatchString(c.Cart) {
		return problem(http.StatusBadRequest, "invalid_cart", "cart", "cart %q is not a cart id", truncate(c.Cart))
	}
	if c.Total <= 0 {
		return problem(http.StatusBadRequest, "invalid_total", "total", "total %d must be the cart's positive total in cents", c.Total)
	}
	return nil
}

var cartRE = regexp.MustCompile(`^(g-[0-9a-f]{32}|u-[A-Za-z0-9_-]{1,64})$`)

// fingerprint identifies a checkout request for its idempotency key.
func (c checkoutRequest) fingerprint() string {
	sum := sha256.Sum256([]byte(c.Cart + "\x00" + strconv.FormatInt(c.Total, 10)))
	return hex.EncodeToString(sum[:8])
}

// callbackRequest is a payment provider's notice.
type callbackRequest struct {
	Key      string `json:"key"`
	ChargeID string `json:"charge_id"`
	Amount   int64  `json:"amount"`
	Status   string `json:"status"`
}

func (c callbackRequest) validate() error {
	switch {
	case !orderIDRE.MatchString(c.Key):
		return problem(http.StatusBadRequest, "invalid_key", "key", "key %q is not an order id", truncate(c.Key))
	case c.Status != "charged" && c.Status != "refunded":
		return problem(http.StatusBadRequest, "invalid_status", "status", "status %q (charged or refunded)", truncate(c.Status))
	case c.Amount <= 0:
		return problem(http.StatusBadRequest, "invalid_amount", "amount", "amount %d must be positive", c.Amount)
	}
	return nil
}

var orderIDRE = regexp.MustCompile(`^o-[0-9a-f]{24}$`)

// stockRequest adds stock.
type stockRequest struct {
	Add int `json:"add"`
}

// searchQuery parses the catalog search parameters.
func searchQuery(r *http.Request) (catalog.Query, error) {
	v := r.URL.Query()
	q := catalog.Query{Text: v.Get("q"), After: v.Get("cursor"), Filters: map[string]string{}}
	for _, f := range v["facet"] {
		if name, ok := strings.CutPrefix(f, "attr."); ok {
			f = "attrs." + name
		}
		q.Facets = append(q.Facets, f)
	}
	for _, f := range []string{"category", "brand"} {
		if x := v.Get(f); x != "" {
			q.Filters[f] = x
		}
	}
	for k, vals := range v {
		if name, ok := strings.CutPrefix(k, "attr."); ok && len(vals) > 0 {
			q.Filters["attrs."+name] = vals[0]
		}
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"min_price", &q.MinPrice}, {"max_price", &q.MaxPrice}} {
		if x := v.Get(p.name); x != "" {
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil || n < 0 {
				return q, problem(http.StatusBadRequest, "invalid_parameter", p.name, "%s %q is not a price in cents", p.name, truncate(x))
			}
			*p.dst = n
		}
	}
	if x := v.Get("limit"); x != "" {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > 100 {
			return q, problem(http.StatusBadRequest, "invalid_parameter", "limit", "limit %q is outside 1..100", truncate(x))
		}
		q.Limit = n
	}
	return q, nil
}

func truncate(s string) string {
	if len(s) > 70 {
		return s[:70] + "…"
	}
	return s
}
