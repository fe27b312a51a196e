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

// Error is a client error: over a WebSocket it is an error frame with
// Code and Detail, over HTTP a problem+json response (httpsec's Problem)
// with Status.
type Error struct {
	// Code is stable and machine-readable, e.g. "not_member".
	Code string
	// Detail names the value at fault.
	Detail string
	// Status is the HTTP status of the error.
	Status int
	// RetryAfter, when positive, is how long to wait before retrying.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return "chat: " + e.Detail }

// errUnavailable is wrapped by every error of a Redis call that failed or
// that the breaker refused: the client should retry with the same message
// ID.
var errUnavailable = errors.New("redis unavailable")

// errDraining refuses a connection that registers while the gateway
// drains.
var errDraining = errors.New("chat: gateway draining")

var codeStatus = map[string]int{
	"unknown_conversation": http.StatusNotFound,
	"not_member":           http.StatusForbidden,
	"forged_sender":        http.StatusForbidden,
	"rate_limited":         http.StatusTooManyRequests,
	"too_large":            http.StatusRequestEntityTooLarge,
	"exists":               http.StatusConflict,
	"not_found":            http.StatusNotFound,
	"unsupported_type":     http.StatusUnsupportedMediaType,
	"unauthorized":         http.StatusUnauthorized,
}

func clientErr(code, format string, args ...any) *Error {
	st, ok := codeStatus[code]
	if !ok {
		st = http.StatusBadRequest
	}
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...), Status: st}
}

// asError maps any error of the service to a client error.
func (s *Service) asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, errUnavailable) {
		return &Error{Code: "unavailable", Detail: "storage unavailable; retry with the same message id", Status: http.StatusServiceUnavailable, RetryAfter: s.cfg.BreakerOpen}
	}
	s.cfg.Logger.Error("internal error", "gateway", s.cfg.Gateway, "err", err)
	return &Error{Code: "internal", Detail: "internal error", Status: http.StatusInternalServerError}
}

func writeProblem(w http.ResponseWriter, e *Error) {
	w.Header().Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	httpsec.WriteProblem(w, &httpsec.Problem{Status: e.Status, Detail: e.Detail, Code: e.Code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
