package service

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// reserved are aliases that would shadow the service's own paths.
var reserved = map[string]bool{
	"api": true, "healthz": true, "metrics": true, "debug": true, "static": true,
	"admin": true, "login": true, "favicon.ico": true, "robots.txt": true,
}

// validCode reports whether s may be a short code or alias: 3 to 32
// characters from [A-Za-z0-9_-].
func validCode(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validateAlias(alias string) *httpsec.Problem {
	if !validCode(alias) {
		return badRequest("invalid_alias", "alias", fmt.Sprintf("alias %q must be 3 to 32 characters from A-Z, a-z, 0-9, '_' and '-'", truncate(alias)))
	}
	if reserved[strings.ToLower(alias)] {
		return badRequest("reserved_alias", "alias", fmt.Sprintf("alias %q is reserved", alias))
	}
	return nil
}

// validateURL accepts only absolute http and https URLs with a host, no
// credentials, no control characters or spaces, at most maxLen bytes, and
// not pointing back at the service (at any of the self hosts: a redirect
// loop). Schemes such as
// javascript:, data:, file: and vbscript: are refused by the allow-list.
func validateURL(raw string, maxLen int, self []string) (string, *httpsec.Problem) {
	const field = "url"
	switch {
	case raw == "":
		return "", badRequest("missing_url", field, "url is required")
	case len(raw) > maxLen:
		return "", badRequest("url_too_long", field, fmt.Sprintf("url is %d bytes; the limit is %d", len(raw), maxLen))
	}
	for _, r := range raw {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return "", badRequest("invalid_url", field, fmt.Sprintf("url contains the character %q", r))
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", badRequest("invalid_url", field, "url does not parse: "+err.Error())
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", badRequest("unsupported_scheme", field, fmt.Sprintf("scheme %q is not allowed; use http or https", truncate(u.Scheme)))
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "", badRequest("invalid_url", field, "url needs a host, as in https://example.com/page")
	}
	if u.User != nil {
		return "", badRequest("invalid_url", field, "url must not contain credentials (user@host)")
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return "", badRequest("invalid_url", field, fmt.Sprintf("url has a bad port %q", p))
		}
	}
	for _, h := range self {
		if h != "" && strings.EqualFold(u.Host, h) {
			return "", badRequest("self_reference", field, "url points at this service; shortening a short URL makes a redirect loop")
		}
	}
	u.Scheme = scheme
	return u.String(), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
