package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIPOptions configure a [ClientIP]. The zero value trusts no proxy
// and keys IPv4 clients by address and IPv6 clients by /64.
type ClientIPOptions struct {
	// TrustedProxies are the networks of the proxies in front of the
	// server (load balancers, CDNs). Forwarding headers are read only
	// from a peer inside one of them, and only the part of the header
	// those proxies appended is believed. Default none: headers are
	// ignored and the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// IPv4Bits is the prefix length IPv4 clients are grouped by. Default
	// 32 (one key per address); must be in [1, 32].
	IPv4Bits int
	// IPv6Bits is the prefix length IPv6 clients are grouped by. Default
	// 64: one subscriber usually holds a whole /64, so keying by address
	// would let it rotate through 2^64 keys. Must be in [1, 128].
	IPv6Bits int
}

// ClientIP finds the client address of an HTTP request for IP-based
// limits, without trusting what clients say about themselves.
//
// A client can put anything in X-Forwarded-For or Forwarded. ClientIP
// believes those headers only when the TCP peer is a trusted proxy, and
// then walks the forwarding chain from the right (the hop nearest the
// server) past trusted proxies; the first address not in TrustedProxies
// is the client. Entries to the left of it were written by the client and
// are ignored, so a spoofed header gains nothing. Forwarded (RFC 7239) is
// preferred to X-Forwarded-For when both are present.
//
// Guide (Security Considerations → Rate Limiting, "IP-based Limiting:
// Per-IP rate limits"): pros — needs no login, stops anonymous floods;
// cons — clients behind one NAT or carrier-grade NAT share a limit, and
// IPv6 clients own whole /64s, hence [ClientIPOptions.IPv6Bits].
//
// A ClientIP is safe for concurrent use.
type ClientIP struct {
	trusted []netip.Prefix
	v4, v6  int
}

// NewClientIP returns a client address extractor.
func NewClientIP(opts ClientIPOptions) (*ClientIP, error) {
	c := &ClientIP{v4: opts.IPv4Bits, v6: opts.IPv6Bits}
	if c.v4 == 0 {
		c.v4 = 32
	}
	if c.v6 == 0 {
		c.v6 = 64
	}
	if c.v4 < 1 || c.v4 > 32 {
		return nil, fmt.Errorf("%w: IPv4Bits must be in [1, 32], got %d", ErrInvalidConfig, opts.IPv4Bits)
	}
	if c.v6 < 1 || c.v6 > 128 {
		return nil, fmt.Errorf("%w: IPv6Bits must be in [1, 128], got %d", ErrInvalidConfig, opts.IPv6Bits)
	}
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: invalid trusted proxy prefix %v", ErrInvalidConfig, p)
		}
		c.trusted = append(c.trusted, p.Masked())
	}
	return c, nil
}

func (c *ClientIP) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client's address. It fails with [ErrMalformedHeader]
// when a trusted proxy sent a forwarding header that does not parse, and
// with [ErrKeyFunc] when the request's RemoteAddr is not an address.
func (c *ClientIP) Addr(r *http.Request) (netip.Addr, error) {
	peer, err := parseHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: RemoteAddr %q: %w", ErrKeyFunc, r.RemoteAddr, err)
	}
	if !c.isTrusted(peer) {
		return peer, nil
	}
	var hops []netip.Addr
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		hops, err = parseForwarded(fwd)
	} else if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 { // saves a call: parseXFF of no line is no hop
		hops, err = parseXFF(xff)
	}
	if err != nil {
		return netip.Addr{}, err
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		if !hops[i].IsValid() { // "unknown": the proxy that wrote it is the best we know
			break
		}
		client = hops[i]
		if !c.isTrusted(client) {
			break
		}
	}
	return client, nil
}

// Key returns the client's limit key: its address, or its network when
// grouped (e.g. "2001:db8:1:2::/64"). It has the signature
// [MiddlewareOptions.Key] wants.
func (c *ClientIP) Key(r *http.Request) (string, error) {
	a, err := c.Addr(r)
	if err != nil {
		return "", err
	}
	return c.Group(a), nil
}

// Group returns the key for address a: a itself, or its network.
func (c *ClientIP) Group(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	bits := c.v6
	if a.Is4() {
		bits = c.v4
	}
	if bits == a.BitLen() {
		return a.String()
	}
	p, _ := a.Prefix(bits) // bits is within range: checked by NewClientIP
	return p.String()
}

// parseHostPort parses "host:port", "[v6]:port" or a bare address.
func parseHostPort(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return netip.ParseAddr(host)
}

// parseXFF parses X-Forwarded-For lines: comma-separated addresses.
func parseXFF(lines []string) ([]netip.Addr, error) {
	var hops []netip.Addr
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			a, err := parseHostPort(part)
			if err != nil {
				return nil, fmt.Errorf("%w: X-Forwarded-For entry %q is not an IP address", ErrMalformedHeader, part)
			}
			hops = append(hops, a)
		}
	}
	return hops, nil
}

// parseForwarded parses the for= parameters of Forwarded lines (RFC
// 7239). "unknown" and obfuscated identifiers become the zero Addr.
func parseForwarded(lines []string) ([]netip.Addr, error) {
	var hops []netip.Addr
	for _, line := range lines {
		for elem := range strings.SplitSeq(line, ",") {
			found := false
			for pair := range strings.SplitSeq(elem, ";") {
				name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					if strings.TrimSpace(pair) == "" {
						continue
					}
					return nil, fmt.Errorf("%w: Forwarded element %q has a parameter without '='", ErrMalformedHeader, elem)
				}
				if !strings.EqualFold(name, "for") {
					continue
				}
				if found {
					return nil, fmt.Errorf("%w: Forwarded element %q has two for= parameters", ErrMalformedHeader, elem)
				}
				found = true
				// A quoted string; `""` (empty) fails as no address either
				// way, so > 2 would do as well as >= 2.
				if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
					value = value[1 : len(value)-1]
				}
				if value == "unknown" || strings.HasPrefix(value, "_") {
					hops = append(hops, netip.Addr{})
					continue
				}
				a, err := parseHostPort(value)
				if err != nil {
					return nil, fmt.Errorf("%w: Forwarded for=%q is not an IP address", ErrMalformedHeader, value)
				}
				hops = append(hops, a)
			}
			if !found { // a hop that did not say whom it forwarded for
				hops = append(hops, netip.Addr{})
			}
		}
	}
	return hops, nil
}
