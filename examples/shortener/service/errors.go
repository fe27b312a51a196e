package service

import (
	"encoding/json"
	"net/http"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// Every error response is an RFC 9457 problem ([httpsec.Problem]), the
// shape the rate limiter's 429 answers use too, with a stable,
// machine-readable Code and the Field that was wrong.

func badRequest(code, field, detail string) *httpsec.Problem {
	return &httpsec.Problem{Status: http.StatusBadRequest, Code: code, Field: field, Detail: detail}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
