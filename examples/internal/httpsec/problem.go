package httpsec

import (
	"encoding/json"
	"net/http"
)

// Problem is the body of every error response: RFC 9457 problem details
// with two extension members, a stable machine-readable Code and the
// request Field at fault. It is an error, so that a request decoder can
// return the answer it wants written.
type Problem struct {
	// Type is a URI naming the problem type. Default "about:blank".
	Type string `json:"type"`
	// Title is a short summary. Default: the status text of Status.
	Title string `json:"title"`
	// Status is the HTTP status code. Default 500.
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Code is a stable identifier of the problem, e.g. "invalid_url".
	Code string `json:"code,omitempty"`
	// Field names the request field at fault, e.g. "url".
	Field string `json:"field,omitempty"`
}

// Error returns the problem's detail.
func (p *Problem) Error() string { return p.Detail }

// WriteProblem writes p as an application/problem+json response that no
// cache keeps and no browser sniffs.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	out := *p
	if out.Status == 0 {
		out.Status = http.StatusInternalServerError
	}
	if out.Type == "" {
		out.Type = "about:blank"
	}
	if out.Title == "" {
		out.Title = http.StatusText(out.Status)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(out.Status)
	_ = json.NewEncoder(w).Encode(&out)
}
