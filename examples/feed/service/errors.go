package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// ErrInvalidConfig is wrapped by [New] errors for bad configuration.
var ErrInvalidConfig = errors.New("feed: invalid configuration")

// ErrUnavailable is wrapped by every error of a Redis call that failed or
// that the circuit breaker refused; the API answers it with 503 and
// Retry-After.
var ErrUnavailable = errors.New("feed: redis unavailable")

// Error is a client error, answered as problem+json with Status.
type Error struct {
	// Code is stable and machine-readable, e.g. "unknown_user".
	Code string
	// Field is the request field at fault, if one is.
	Field string
	// Detail names the value at fault.
	Detail string
	// Status is the HTTP status of the error.
	Status int
}

func (e *Error) Error() string { return "feed: " + e.Detail }

var codeStatus = map[string]int{
	"unknown_user":    http.StatusNotFound,
	"unknown_post":    http.StatusNotFound,
	"not_found":       http.StatusNotFound,
	"forbidden":       http.StatusForbidden,
	"unauthorized":    http.StatusUnauthorized,
	"too_large":       http.StatusRequestEntityTooLarge,
	"exists":          http.StatusConflict,
	"unsupported":     http.StatusUnsupportedMediaType,
	"idempotency_key": http.StatusUnprocessableEntity,
}

// clientErr returns the client error code for field; its status is
// codeStatus's, else 400.
func clientErr(code, field, format string, args ...any) *Error {
	st, ok := codeStatus[code]
	if !ok {
		st = http.StatusBadRequest
	}
	return &Error{Code: code, Field: field, Detail: fmt.Sprintf(format, args...), Status: st}
}

// writeError answers err: a client error as itself, ErrUnavailable as 503
// with Retry-After, anything else as a logged 500.
func (s *Service) writeError(w http.ResponseWriter, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.BreakerOpen.Seconds()))))
		e = &Error{Code: "unavailable", Detail: "storage unavailable; retry later", Status: http.StatusServiceUnavailable}
	default:
		s.cfg.Logger.Error("internal error", "err", err)
		e = &Error{Code: "internal", Detail: "internal error", Status: http.StatusInternalServerError}
	}
	httpsec.WriteProblem(w, &httpsec.Problem{Status: e.Status, Detail: e.Detail, Code: e.Code, Field: e.Field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// trunc shortens a client's value for an error message.
func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// since is the time from t to now in seconds, for histograms.
func since(now func() time.Time, t time.Time) float64 { return now().Sub(t).Seconds() }
