package httpsec_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

func TestAudit(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	tok := newTokens(t, httpsec.TokenOptions{Secret: secret})
	h := httpsec.WithRequestID(tok.Require("admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpsec.Audit(logger, r, "delete", slog.String("code", "abc"), slog.String("outcome", "deleted"))
	})))
	r := httptest.NewRequest(http.MethodDelete, "/api/v1/urls/abc", nil)
	r.Header.Set("Authorization", "Bearer "+issue(t, tok, "ops", []string{"admin"}, time.Minute))
	r.Header.Set(httpsec.RequestIDHeader, "req-77")
	if res := serve(h, r); res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON record expected, got %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"msg": "audit", "level": "INFO", "action": "delete", "request_id": "req-77", "subject": "ops",
		"method": "DELETE", "path": "/api/v1/urls/abc", "code": "abc", "outcome": "deleted",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
	if roles, _ := rec["roles"].([]any); len(roles) != 1 || roles[0] != "admin" {
		t.Errorf("roles %v", rec["roles"])
	}
}
