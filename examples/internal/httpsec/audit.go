package httpsec

import (
	"log/slog"
	"net/http"
)

// Audit records an administrative action taken on r: one log/slog record
// at Info with the message "audit", the action, the request id
// ([RequestID]), the caller — the subject and roles of a verified token
// ([IdentityFrom]) or the name of an API key ([APIKeyName]) — the peer
// address, the method and the path, then attrs (what was acted on, the
// outcome). Log it after the action, with its outcome, so that the record
// says what happened rather than what was tried.
func Audit(logger *slog.Logger, r *http.Request, action string, attrs ...slog.Attr) {
	ctx := r.Context()
	all := make([]slog.Attr, 0, 8+len(attrs))
	all = append(all, slog.String("action", action), slog.String("request_id", RequestID(ctx)))
	if id, ok := IdentityFrom(ctx); ok {
		all = append(all, slog.String("subject", id.Subject), slog.Any("roles", id.Roles))
	}
	if name := APIKeyName(ctx); name != "" {
		all = append(all, slog.String("api_key", name))
	}
	all = append(all, slog.String("remote_addr", r.RemoteAddr), slog.String("method", r.Method), slog.String("path", r.URL.Path))
	all = append(all, attrs...)
	logger.LogAttrs(ctx, slog.LevelInfo, "audit", all...)
}
