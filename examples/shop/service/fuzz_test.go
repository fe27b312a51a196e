package service

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// FuzzDecodeRequests feeds arbitrary bodies and query strings to the
// request decoders: they must never panic, and must either accept a value
// that validates or refuse it with a 4xx problem.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{`{"qty":1}`, `{"qty":-1}`, `{"cart":"u-ann","total":900}`, `{"key":"o-000000000000000000000000","charge_id":"c","amount":1,"status":"charged"}`,
		`{`, `[]`, `{"qty":1e999}`, `{"qty":1}{"qty":2}`, "q=mug&limit=5&min_price=1&attr.color=red&facet=attr.size", "limit=-1&cursor=%7B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		check := func(err error) {
			if err == nil {
				return
			}
			p, ok := err.(*httpsec.Problem)
			if !ok || p.Status < 400 || p.Status > 499 || p.Detail == "" {
				t.Fatalf("error %v is not a 4xx problem", err)
			}
		}
		var item itemRequest
		if err := decodeBytes([]byte(in), &item); err == nil {
			check(item.validate())
		} else {
			check(err)
		}
		var co checkoutRequest
		if err := decodeBytes([]byte(in), &co); err == nil {
			check(co.validate())
		} else {
			check(err)
		}
		var cb callbackRequest
		if err := decodeBytes([]byte(in), &cb); err == nil {
			check(cb.validate())
		} else {
			check(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/products", nil)
		r.URL.RawQuery = strings.ReplaceAll(in, "#", "")
		_, err := searchQuery(r)
		check(err)
	})
}
