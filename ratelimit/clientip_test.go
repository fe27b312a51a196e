package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func request(remote string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestClientIP(t *testing.T) {
	behindLB, err := NewClientIP(ClientIPOptions{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48"),
	}})
	require.NoError(t, err)
	direct, err := NewClientIP(ClientIPOptions{})
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		c       *ClientIP
		req     *http.Request
		want    string
		wantErr error
	}{
		{"direct peer", direct, request("203.0.113.7:5555"), "203.0.113.7", nil},
		{"spoofed XFF from an untrusted peer is ignored", direct,
			request("203.0.113.7:5555", "X-Forwarded-For", "1.2.3.4"), "203.0.113.7", nil},
		{"spoofed Forwarded from an untrusted peer is ignored", behindLB,
			request("203.0.113.7:5555", "Forwarded", "for=1.2.3.4"), "203.0.113.7", nil},
		{"XFF from a trusted proxy", behindLB,
			request("10.1.2.3:80", "X-Forwarded-For", "198.51.100.9"), "198.51.100.9", nil},
		{"client-written entries left of the real client are ignored", behindLB,
			request("10.1.2.3:80", "X-Forwarded-For", "6.6.6.6, 198.51.100.9, 10.9.9.9"), "198.51.100.9", nil},
		{"XFF over several header lines", behindLB,
			request("10.1.2.3:80", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "198.51.100.9"), "198.51.100.9", nil},
		{"all hops trusted: the leftmost", behindLB,
			request("10.1.2.3:80", "X-Forwarded-For", "10.7.7.7, 10.8.8.8"), "10.7.7.7", nil},
		{"Forwarded preferred to XFF", behindLB,
			request("10.1.2.3:80", "Forwarded", `for=192.0.2.60;proto=http;by=10.1.2.3`, "X-Forwarded-For", "6.6.6.6"), "192.0.2.60", nil},
		{"Forwarded IPv6 with port, grouped by /64", behindLB,
			request("10.1.2.3:80", "Forwarded", `for="[2001:db8:cafe:1:2:3:4:5]:4711"`), "2001:db8:cafe:1::/64", nil},
		{"Forwarded unknown: the proxy that wrote it", behindLB,
			request("10.1.2.3:80", "Forwarded", `for=unknown`), "10.1.2.3", nil},
		{"IPv6 peer grouped by /64", direct, request("[2001:db8:1:2:aaaa::1]:443"), "2001:db8:1:2::/64", nil},
		{"IPv4-mapped IPv6 peer", direct, request("[::ffff:203.0.113.7]:443"), "203.0.113.7", nil},
		{"trusted IPv6 proxy", behindLB,
			request("[2001:db8:ffff::1]:443", "X-Forwarded-For", "198.51.100.1"), "198.51.100.1", nil},
		{"malformed XFF from a trusted proxy", behindLB,
			request("10.1.2.3:80", "X-Forwarded-For", "198.51.100.9, not-an-ip"), "", ErrMalformedHeader},
		{"malformed Forwarded from a trusted proxy", behindLB,
			request("10.1.2.3:80", "Forwarded", "for"), "", ErrMalformedHeader},
		{"Forwarded with a bad address", behindLB,
			request("10.1.2.3:80", "Forwarded", "for=999.1.1.1"), "", ErrMalformedHeader},
		{"Forwarded with two for=", behindLB,
			request("10.1.2.3:80", "Forwarded", "for=1.1.1.1;for=2.2.2.2"), "", ErrMalformedHeader},
		{"bad RemoteAddr", direct, request("pipe"), "", ErrKeyFunc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Key(tc.req)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), "ratelimit: ")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestClientIP_Grouping(t *testing.T) {
	c, err := NewClientIP(ClientIPOptions{IPv4Bits: 24, IPv6Bits: 48})
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.0/24", c.Group(netip.MustParseAddr("203.0.113.77")))
	assert.Equal(t, "2001:db8:1::/48", c.Group(netip.MustParseAddr("2001:db8:1:2::9")))
	full, err := NewClientIP(ClientIPOptions{IPv6Bits: 128})
	require.NoError(t, err)
	assert.Equal(t, "2001:db8::9", full.Group(netip.MustParseAddr("2001:db8::9%eth0")))
	// The widest groups the options allow: one bit of network.
	widest, err := NewClientIP(ClientIPOptions{IPv4Bits: 1, IPv6Bits: 1})
	require.NoError(t, err)
	assert.Equal(t, "128.0.0.0/1", widest.Group(netip.MustParseAddr("203.0.113.77")))
	assert.Equal(t, "::/1", widest.Group(netip.MustParseAddr("2001:db8::9")))
	// The defaults: an IPv4 client alone, an IPv6 client by its /64.
	def, err := NewClientIP(ClientIPOptions{})
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.77", def.Group(netip.MustParseAddr("::ffff:203.0.113.77")))
	assert.Equal(t, "2001:db8:1:2::/64", def.Group(netip.MustParseAddr("2001:db8:1:2::9")))
}

func TestClientIP_BadConfig(t *testing.T) {
	for _, o := range []ClientIPOptions{
		{IPv4Bits: 33}, {IPv4Bits: -1}, {IPv6Bits: 129}, {IPv6Bits: -64}, {IPv6Bits: -1},
		{TrustedProxies: []netip.Prefix{{}}},
	} {
		_, err := NewClientIP(o)
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}

// Whatever a client sends, extraction returns an address or an error, and
// an untrusted peer always gets its own address.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "1.2.3.4, 10.0.0.2", `for=5.6.7.8;proto=https`)
	f.Add("203.0.113.1:9", "garbage", `for="[::1]:80", for=unknown`)
	f.Add("10.0.0.1:1", ",,,", `;;;=`)
	c, err := NewClientIP(ClientIPOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := request(remote, "X-Forwarded-For", xff, "Forwarded", fwd)
		a, err := c.Addr(r)
		if err != nil {
			return
		}
		if !a.IsValid() {
			t.Fatalf("no error and no address for %q %q %q", remote, xff, fwd)
		}
		if peer, perr := parseHostPort(remote); perr == nil && !c.isTrusted(peer) && a != peer {
			t.Fatalf("untrusted peer %v reported as %v", peer, a)
		}
	})
}
