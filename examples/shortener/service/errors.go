package service

import (
	"encoding/json"
	"net/http"
)

// Problem is the body of every error response: RFC 9457 problem details,
// the shape the rate limiter's 429 answers use too, with a stable,
// machine-readable Code and the Field that was wrong.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Code is a stable identifier of the problem, e.g. "invalid_url".
	Code string `json:"code,omitempty"`
	// Field names the request field at fault, e.g. "url".
	Field string `json:"field,omitempty"`
}

// apiError is a client-facing error: the status and the problem to send.
type apiError struct {
	status      int
	code, field string
	detail      string
}

func (e *apiError) Error() string { return e.detail }

func badRequest(code, field, detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, field: field, detail: detail}
}

func writeProblem(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(Problem{
		Type: "about:blank", Title: http.StatusText(e.status), Status: e.status,
		Detail: e.detail, Code: e.code, Field: e.field,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
