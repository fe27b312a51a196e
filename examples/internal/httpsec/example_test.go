package httpsec_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// ExampleTokens_Require guards an administrative route with a role, as the
// guide's "Security & Reliability → Security Considerations" asks
// (authentication with JWT, role-based authorization): no token is 401, a
// user's token is 403, an admin's passes.
func ExampleTokens_Require() {
	tokens, err := httpsec.NewTokens(httpsec.TokenOptions{
		Issuer: "example", Audience: "example-api", Secret: []byte("a secret of at least thirty-two bytes"),
	})
	if err != nil {
		panic(err)
	}
	sec, err := httpsec.NewMiddleware(httpsec.Options{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("DELETE /things/{id}", tokens.Require("admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := httpsec.IdentityFrom(r.Context())
		fmt.Fprintf(w, "deleted by %s", id.Subject)
	})))
	srv := httptest.NewServer(sec.Handler(mux))
	defer srv.Close()

	for _, roles := range [][]string{nil, {"user"}, {"admin"}} {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/things/1", nil)
		if roles != nil {
			tok, err := tokens.Issue("ada", roles, time.Minute)
			if err != nil {
				panic(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		res.Body.Close()
		fmt.Println(roles, res.StatusCode, res.Header.Get("X-Frame-Options"))
	}
	// Output:
	// [] 401 DENY
	// [user] 403 DENY
	// [admin] 200 DENY
}
