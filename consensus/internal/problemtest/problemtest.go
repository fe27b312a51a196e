// Package problemtest checks, for the fuzz tests of the consensus module's
// HTTP APIs, that an answer is one a client can rely on whatever it sent.
package problemtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Check fails t unless rec holds an answer any request may get: never a
// 500; for an error, an RFC 9457 problem body (application/problem+json)
// whose status is the answer's and whose detail is not empty, with a
// WWW-Authenticate challenge on a 401. The router's own plain-text answer
// for a path or method it has no route for passes. what names the request
// in a failure.
func Check(t testing.TB, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == http.StatusInternalServerError {
		t.Fatalf("%s: 500: %s", what, rec.Body)
	}
	ct := rec.Header().Get("Content-Type")
	if rec.Code < 400 || ct == "text/plain; charset=utf-8" && (rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed) {
		return
	}
	if ct != "application/problem+json" {
		t.Fatalf("%s: %d with Content-Type %q: %s", what, rec.Code, ct, rec.Body)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Detail == "" {
		t.Fatalf("%s: %d with a bad problem body (%v): %s", what, rec.Code, err, rec.Body)
	}
	if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("%s: 401 without a challenge", what)
	}
}
