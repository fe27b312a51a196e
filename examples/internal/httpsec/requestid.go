package httpsec

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
)

// RequestIDHeader carries a request's id, from the client or the first
// server that saw it, to every server the request goes through and back
// in the response.
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// RequestID returns the id [WithRequestID] gave the request of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID gives every request an id: the X-Request-ID it came with,
// if that is 1 to 128 characters from A-Z, a-z, 0-9 and "-_.:+/=", or a
// new random one when it came without. The id is set on the request's
// header, so that a proxy forwards it, on the response's, and in the
// context ([RequestID]). A malformed id is refused with 400, naming it,
// rather than replaced behind the client's back. [Middleware.Handler]
// includes it; a balancer in front of services uses it alone.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := r.Header.Values(RequestIDHeader)
		var id string
		switch {
		case len(ids) == 0:
			id = rand.Text()
			r.Header.Set(RequestIDHeader, id)
		case len(ids) == 1 && validRequestID(ids[0]):
			id = ids[0]
		default:
			WriteProblem(w, &Problem{Status: http.StatusBadRequest, Code: "invalid_request_id", Field: RequestIDHeader,
				Detail: fmt.Sprintf("X-Request-ID %q must be one value of 1 to 128 characters from A-Z, a-z, 0-9 and \"-_.:+/=\"", truncate(fmt.Sprint(ids)))})
			return
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func validRequestID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}
