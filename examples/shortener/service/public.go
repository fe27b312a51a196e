package service

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// publicAddr is the address clients reach the service at: the scheme and
// host short URLs are built from and self-references are checked against.
type publicAddr struct {
	base string // scheme://host, no trailing slash
	host string
}

// parseBaseURL checks Config.BaseURL: an absolute http or https URL with a
// host and nothing after an optional path.
func parseBaseURL(raw string) (publicAddr, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return publicAddr{}, fmt.Errorf("%w: base URL %q (want http or https, a host and at most a path, e.g. https://sho.rt)", ErrInvalidConfig, raw)
	}
	return publicAddr{base: strings.TrimSuffix(raw, "/"), host: u.Host}, nil
}

// public returns the address the client of r used: Config.BaseURL if set;
// else, for a request from a trusted proxy, the X-Forwarded-Host and
// X-Forwarded-Proto it set; else the request's own Host. A proxy that
// rewrites Host to its backend's address (as many do by default) would
// otherwise hand out links to an internal port.
func (s *Service) public(r *http.Request) publicAddr {
	if s.base.base != "" {
		return s.base
	}
	host, scheme := r.Host, "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if s.fromTrustedProxy(r) {
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); validHost(h) {
			host = h
		}
		if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
			scheme = p
		}
	}
	return publicAddr{base: scheme + "://" + host, host: host}
}

// selfHosts are the hosts a long URL may not point at: the public one and
// the one this request was addressed to (an instance's own address).
func (s *Service) selfHosts(r *http.Request) []string {
	return []string{s.public(r).host, r.Host}
}

// fromTrustedProxy reports whether r's TCP peer is in TrustedProxies.
func (s *Service) fromTrustedProxy(r *http.Request) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// firstValue returns the first element of a comma-separated header value:
// the one the proxy nearest the client wrote.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// validHost reports whether h is a plain host or host:port, fit to build
// a URL from.
func validHost(h string) bool {
	if h == "" || len(h) > 255 || strings.ContainsAny(h, "/\\?#@ \t%") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h && u.Hostname() != "" && (u.Port() == "" || validPort(u.Port()))
}

func validPort(p string) bool {
	_, err := net.LookupPort("tcp", p)
	return err == nil
}
