package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/internal/problemtest"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
)

// FuzzHandler_Request sends the registry's API arbitrary methods, paths,
// bodies and Authorization headers: the answer is never a 500 nor a panic,
// and every error is a problem body whose status is the answer's. Seeded
// with the bad-input cases of the handler's tests; `go test` runs the
// seeds, `go test -fuzz FuzzHandler_Request` explores.
func FuzzHandler_Request(f *testing.F) {
	ok := "Bearer " + webToken
	for _, s := range [][4]string{
		{"PUT", "/v1/services/web/instances/b", `{"addr":`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"adr":"x:1","ttl_ms":60000}`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"addr":"x:1","ttl_ms":60000} {}`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"addr":"x:1","ttl_ms":"long"}`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"addr":"x:1","ttl_ms":0}`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"addr":"x:1","ttl_ms":10}`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"ttl_ms":60000}`, ok},
		{"PUT", "/v1/services/web/instances/b", `{"addr":"x:1","ttl_ms":60000,"meta":{"k":1}}`, ok},
		{"POST", "/v1/registrations/987654/heartbeat", "", ok},
		{"POST", "/v1/registrations/abc/heartbeat", "", ok},
		{"DELETE", "/v1/services/web/instances/zz", "", ok},
		{"GET", "/v1/services/web?stale=1", "", "Bearer " + readerToken},
		{"GET", "/v1/services/web/watch", "", "Bearer " + readerToken},
		{"PUT", "/v1/services/db/instances/b", `{"addr":"x:1","ttl_ms":60000}`, ok},
		{"GET", "/v1/services/web", "", ""},
		{"GET", "/v1/services/web", "", "Bearer"},
		{"GET", "/v1/services/web", "", "Token abc"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1, Node: consensus.Options{Timing: testTiming()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close(context.Background()) })
	reg, err := registry.New(c.Nodes()[0], registry.Options{MinTTL: ttl})
	if err != nil {
		f.Fatal(err)
	}
	auth, err := consensus.NewAuth(
		consensus.User{Name: "web", Token: webToken, Role: consensus.RoleReadWrite, Prefix: "web"},
		consensus.User{Name: "reader", Token: readerToken, Role: consensus.RoleReadOnly},
	)
	if err != nil {
		f.Fatal(err)
	}
	h, err := registry.NewHandler(reg, registry.HandlerOptions{Auth: auth})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, body, authz string) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond) // ends a watch
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://node"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(path, "/") {
			return // not a request a server would parse
		}
		req.Header.Set("Authorization", authz)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		problemtest.Check(t, fmt.Sprintf("%s %s %q", method, path, body), rec)
	})
}
