// Package httpsec holds the secure HTTP defaults of the example services of
// the guide System Design Round — Principal Engineer Interview Preparation,
// "Security & Reliability → Security Considerations": security headers, a
// request body limit, a strict CORS policy, request ids, signed tokens with
// roles, API keys with their own rate limits, an audit log of
// administrative actions and one problem+json writer. It is written once
// here so that every service answers bad input the same way.
//
// The lines a service writes first:
//
//	sec, err := httpsec.NewMiddleware(httpsec.Options{AllowedOrigins: []string{"https://app.example"}})
//	tokens, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shortener", Audience: "shortener-api", Secret: secret})
//	mux.Handle("DELETE /api/v1/urls/{code}", tokens.Require("admin", deleteHandler))
//	http.ListenAndServe(addr, sec.Handler(mux))
//
// # What each piece does
//
//   - [Middleware] is the site-wide layer, in this order: a request id
//     ([RequestID], also alone as [WithRequestID] for a balancer), security
//     headers (HSTS only when the request came over TLS, a
//     Content-Security-Policy, nosniff, framing refused, Referrer-Policy),
//     CORS (an allow-list of origins, preflights answered, never "*" with
//     credentials) and a body limit.
//   - [Tokens] issues and verifies JWTs (HS256 or EdDSA, one method pinned;
//     issuer, audience, expiry and not-before checked, with an explicit
//     leeway for clock skew) that carry a subject and roles; [Tokens.Require]
//     puts the verified [Identity] in the request's context, or answers 401
//     or 403.
//   - [APIKeys] admits requests bearing a known X-API-Key and limits each
//     key on its own with a ratelimit.KeyedLimiter.
//   - [Audit] records an administrative action as a structured log/slog
//     record carrying the request id and the caller's identity.
//   - [WriteProblem] writes every error as RFC 9457 problem+json.
//
// Every type is safe for concurrent use and starts no goroutine. Errors of
// configuration wrap [ErrInvalidConfig]; errors of tokens wrap
// [ErrInvalidToken] and the golang-jwt error that names the failed check.
package httpsec
