package rediscache

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
)

// proxies puts a tcpproxy in front of every server a client dials — the
// single node, or each Cluster node as the cluster client discovers it
// (CLUSTER SLOTS names the real addresses, so the proxies sit in the
// client's dialer, not in its seed list) — so a test can cut or blackhole
// the whole deployment at once and heal it.
type proxies struct {
	mu     sync.Mutex
	byAddr map[string]*tcpproxy.Proxy // guarded by mu
	mode   tcpproxy.Mode              // guarded by mu: what new proxies start in
	delay  time.Duration              // guarded by mu: every proxy's latency
}

func (ps *proxies) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ps.mu.Lock()
	p, ok := ps.byAddr[addr]
	if !ok {
		var err error
		if p, err = tcpproxy.New(addr); err != nil {
			ps.mu.Unlock()
			return nil, err
		}
		ps.byAddr[addr] = p
		setMode(p, ps.mode)
		p.SetLatency(ps.delay)
	}
	ps.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, p.Addr())
}

func setMode(p *tcpproxy.Proxy, m tcpproxy.Mode) {
	switch m {
	case tcpproxy.Cut:
		p.Cut()
	case tcpproxy.Blackhole:
		p.Blackhole()
	default:
		p.Restore()
	}
}

func (ps *proxies) set(m tcpproxy.Mode) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.mode = m
	for _, p := range ps.byAddr {
		setMode(p, m)
	}
}

// Cut resets every connection and refuses new ones.
func (ps *proxies) Cut() { ps.set(tcpproxy.Cut) }

// Blackhole holds every connection and drops its bytes.
func (ps *proxies) Blackhole() { ps.set(tcpproxy.Blackhole) }

// CutOne cuts the path to the server at addr only (a Cluster node, named
// by its real address).
func (ps *proxies) CutOne(t testing.TB, addr string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.byAddr[addr]
	require.True(t, ok, "no proxy in front of %s", addr)
	p.Cut()
}

// SetLatency delays every chunk of data on every path by d, each way.
func (ps *proxies) SetLatency(d time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.delay = d
	for _, p := range ps.byAddr {
		p.SetLatency(d)
	}
}

// Restore heals every path.
func (ps *proxies) Restore() { ps.set(tcpproxy.Pass) }

func (ps *proxies) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.byAddr {
		_ = p.Close()
	}
}

// proxiedClient returns a client of db's kind that reaches db through
// proxies the test can cut, and fails fast (no retries or redirects,
// 100 ms timeouts) once they are cut.
func proxiedClient(t testing.TB, db *redistest.DB) (*proxies, redis.UniversalClient) {
	t.Helper()
	ps := &proxies{byAddr: map[string]*tcpproxy.Proxy{}}
	const timeout = 100 * time.Millisecond
	var client redis.UniversalClient
	if db.Cluster {
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: db.Addrs, Dialer: ps.dial,
			MaxRedirects: -1, MaxRetries: -1, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
			ContextTimeoutEnabled: true})
	} else {
		client = redis.NewClient(&redis.Options{Addr: db.Addr, Dialer: ps.dial, MaxRetries: -1,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true})
	}
	// Cleanups run last first: the client closes before its proxies.
	t.Cleanup(ps.close)
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Ping(t.Context()).Err())
	return ps, client
}
