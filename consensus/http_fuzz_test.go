package consensus

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus/internal/problemtest"
)

// FuzzHandler_Request sends the API arbitrary methods, paths, bodies and
// Authorization headers: whatever arrives, the answer is never a 500 nor a
// panic, and every error is a problem body whose status is the answer's,
// with a challenge on a 401. Seeded with the bad-input cases of the
// handler's tests; `go test` runs the seeds, `go test -fuzz
// FuzzHandler_Request` explores.
func FuzzHandler_Request(f *testing.F) {
	admin := "Bearer " + adminToken
	for _, s := range [][4]string{
		{"PUT", "/v1/kv/k", `{"value":`, admin},
		{"PUT", "/v1/kv/k", `{"valeu":"x"}`, admin},
		{"PUT", "/v1/kv/k", `{}`, admin},
		{"PUT", "/v1/kv/k", `{"value":"` + strings.Repeat("x", 65) + `"}`, admin},
		{"GET", "/v1/kv/nope", "", admin},
		{"POST", "/v1/cas/nope", `{"old":"a","value":"b"}`, admin},
		{"POST", "/v1/cluster/join", `{"id":"n1","raft_addr":"x"}`, admin},
		{"POST", "/v1/lock/l", `{"ttl_ms":1000}`, admin},
		{"POST", "/v1/lease", `{"ttl_ms":"x"}`, admin},
		{"POST", "/v1/lease/abc/keepalive", "", admin},
		{"DELETE", "/v1/lease/999999", "", admin},
		{"PUT", "/v1/kv/k", `{"value":"v","lease":"x"}`, admin},
		{"GET", "/v1/watch/k?from=x", "", admin},
		{"GET", "/v1/kv/k?stale=true&min_revision=x", "", admin},
		{"POST", "/v1/restore", "{\"format\":\"sysdesign-consensus-backup\",\"version\":1,\"cluster_id\":\"c\",\"size\":3,\"sha256\":\"00\"}\nabc", admin},
		{"GET", "/v1/kv/app/x", "", ""},
		{"GET", "/v1/kv/app/x", "", "Basic cm9vdDpyb290"},
		{"GET", "/v1/kv/app/x", "", "Bearer"},
		{"PUT", "/v1/kv/app/x", `{"value":"v"}`, "Bearer " + expiredToken},
		{"PUT", "/v1/kv/app/x", `{"value":"v"}`, "Bearer " + readerToken},
		{"PUT", "/v1/kv/other/x", `{"value":"v"}`, "Bearer " + writerToken},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	c := newCluster(f, ClusterOptions{Nodes: 1, Node: Options{MaxValueSize: 64}})
	h, err := NewHandler(c.Nodes()[0], HandlerOptions{Auth: testAuth(f), Timeout: time.Second, NoForward: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, body, auth string) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond) // ends a watch
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://node"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(path, "/") {
			return // not a request a server would parse
		}
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		problemtest.Check(t, fmt.Sprintf("%s %s %q", method, path, body), rec)
	})
}
