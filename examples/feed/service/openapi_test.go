package service_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
)

// The OpenAPI document the service serves lists every route the mux
// serves and no other, and the mux routes a request for each documented
// path and method to that route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, nil, service.Config{}, false)
	code, b, h := e.do("", "GET", "/api/v1/openapi.json", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	routes := service.RoutePatterns(e.svc)
	slices.Sort(documented)
	slices.Sort(routes)
	assert.Equal(t, routes, documented, "the document lists exactly the mux's routes")

	// Each documented operation, with its parameters filled in, reaches
	// its route: not the mux's 404 or 405.
	param := regexp.MustCompile(`\{[a-z]+\}`)
	mux := http.NewServeMux()
	for _, p := range routes {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Pattern)) })
	}
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(method, param.ReplaceAllString(path, "x1"), nil))
		assert.Equal(t, op, w.Body.String(), "%s is served by its route", op)
		code, _, _ := e.do("alice", method, param.ReplaceAllString(path, "x1"), nil)
		assert.NotEqual(t, http.StatusMethodNotAllowed, code, op)
	}
}
