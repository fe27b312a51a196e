package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/examples/internal/lockdown"
	"github.com/sysdesign-go/sysdesign/examples/internal/raftserve"
	"github.com/sysdesign-go/sysdesign/lb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handedOut are the addresses freeAddr returned: a port closed and asked
// for again may come back, and two nodes must never share one.
var handedOut sync.Map

func freeAddr(t *testing.T) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// instance is a service instance the test can kill without deregistering.
type instance struct {
	srv  *http.Server
	addr string
	stop context.CancelFunc
	done chan error
}

func startInstance(t *testing.T, ctx context.Context, cl *registry.Client, id string, ttl time.Duration) *instance {
	t.Helper()
	return startInstanceWith(t, ctx, cl, id, ttl, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", id) })
}

// startInstanceWith starts an instance that serves h and keeps it
// registered.
func startInstanceWith(t *testing.T, ctx context.Context, cl *registry.Client, id string, ttl time.Duration, h http.HandlerFunc) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	in := &instance{addr: ln.Addr().String(), done: make(chan error, 1), srv: &http.Server{ReadHeaderTimeout: time.Second, Handler: h}}
	go func() { _ = in.srv.Serve(ln) }()
	var hctx context.Context
	hctx, in.stop = context.WithCancel(ctx)
	registered := make(chan struct{}, 1)
	go func() {
		in.done <- keepRegistered(hctx, cl, registry.Instance{Service: "hello", ID: id, Addr: in.addr}, ttl, func(registry.Registration) {
			select {
			case registered <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-registered:
	case err := <-in.done:
		t.Fatalf("instance %s: %v", id, err)
	}
	return in
}

// kill stops the instance as kill -9 would: no deregistration.
func (in *instance) kill() {
	in.stop()
	<-in.done
	_ = in.srv.Close()
}

func addrs(b *lb.Balancer) []string {
	var out []string
	for _, x := range b.Backends() {
		out = append(out, x.Addr)
	}
	slices.Sort(out)
	return out
}

// The README walk-through, in one process: a three-node registry, two
// instances, a client-side balancer and a proxy fed by the registry; an
// instance killed leaves within its TTL and no request fails once it has
// left; the registry leader killed, registrations and watches go on; the
// killed node restarts from its data.
func TestDiscoveryWalkThrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	const ttl = time.Second

	cfgs := make([]config, 3)
	regs := make([]*raftserve.Server, 3)
	defer func() {
		for _, s := range regs {
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	var endpoints []string
	for i := range regs {
		cfgs[i] = config{role: "registry", id: fmt.Sprintf("n%d", i+1), raftAddr: "127.0.0.1:0", httpAddr: freeAddr(t), dataDir: filepath.Join(dir, fmt.Sprint(i))}
		if i == 0 {
			cfgs[i].bootstrap = true
		} else {
			cfgs[i].join = regs[0].HTTPAddr()
		}
		s, err := startRegistry(ctx, cfgs[i])
		require.NoError(t, err)
		regs[i] = s
		cfgs[i].raftAddr = s.Node.Addr() // a restart keeps its address
		endpoints = append(endpoints, "http://"+s.HTTPAddr())
		if i == 0 {
			eventually(t, ctx, "n1 leads", s.Node.IsLeader)
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl, err := registry.NewClient(endpoints, registry.ClientOptions{HTTP: &http.Client{Transport: tr}, RetryWait: 20 * time.Millisecond})
	require.NoError(t, err)

	a := startInstance(t, ctx, cl, "a", ttl)
	defer a.kill()
	b := startInstance(t, ctx, cl, "b", ttl)

	// Client-side: a balancer inside the caller. Server-side: a proxy.
	wctx, stopWatch := context.WithCancel(ctx)
	client := follow(wctx, cl.Source("hello"))
	defer func() { stopWatch(); <-client.done }()
	bal, err := client.balancer(ctx)
	require.NoError(t, err)
	eventually(t, ctx, "the client sees a and b", func() bool { return len(bal.Backends()) == 2 })

	proxyAddr := freeAddr(t)
	pctx, stopProxy := context.WithCancel(ctx)
	proxyDone := make(chan error, 1)
	go func() {
		proxyDone <- run(pctx, []string{"proxy", "-service", "hello", "-http", proxyAddr, "-registry", strings.Join(hosts(endpoints), ",")}, io.Discard)
	}()
	defer func() { stopProxy(); require.NoError(t, <-proxyDone) }()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	viaProxy := func() (string, error) {
		resp, err := hc.Get("http://" + proxyAddr + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return strings.TrimSpace(string(body)), err
	}
	eventually(t, ctx, "the proxy serves", func() bool { _, err := viaProxy(); return err == nil })

	// Kill b: it leaves the client's balancer within the lease's bound —
	// TTL + one sweep interval + a commit after its last heartbeat, or
	// after the election of a leader that took office meanwhile — and
	// then no request fails. The commit is timed in the same run, as the
	// registration of a probe: a starved machine stretches both alike.
	elected := watchElections(t, ctx, regs)
	died := time.Now()
	b.kill()
	eventually(t, ctx, "b leaves", func() bool { return len(bal.Backends()) == 1 })
	left := time.Since(died)
	start := time.Now()
	_, err = cl.Register(ctx, registry.Instance{Service: "probe", ID: "p", Addr: "127.0.0.1:1"}, ttl)
	require.NoError(t, err)
	commit := time.Since(start)
	from := died
	if e := elected(); e.After(from) {
		from = e
	}
	bound := from.Sub(died) + ttl + 100*time.Millisecond + 2*commit + 100*time.Millisecond
	t.Logf("b left %v after it died (TTL %v, a commit %v, bound %v)", left, ttl, commit, bound)
	assert.GreaterOrEqual(t, left, ttl-ttl/3-50*time.Millisecond, "b left before its lease could have lapsed")
	assert.Less(t, left, bound)
	assert.Equal(t, []string{a.addr}, addrs(bal))
	for range 20 {
		body, err := get(ctx, hc, bal)
		require.NoError(t, err, "client-side request after b left")
		assert.Equal(t, "hello from a", strings.TrimSpace(body))
		body, err = viaProxy()
		require.NoError(t, err, "request through the proxy after b left")
		assert.Equal(t, "hello from a", body)
	}

	// Kill the registry leader without a handover: a keeps heartbeating
	// through the new leader, a new instance registers, and the client's
	// watch (on whichever node) sees it.
	li := -1
	eventually(t, ctx, "a registry node leads", func() bool { // a busy machine may be between two leaders
		li = slices.IndexFunc(regs, func(s *raftserve.Server) bool { return s.Node.IsLeader() })
		return li >= 0
	})
	killed := regs[li]
	regs[li] = nil
	require.NoError(t, killed.Kill())
	c := startInstance(t, ctx, cl, "c", ttl)
	defer c.kill()
	eventually(t, ctx, "the client sees c", func() bool { return slices.Contains(addrs(bal), c.addr) })
	time.Sleep(ttl + 200*time.Millisecond) // a outlives its TTL on heartbeats alone
	insts, _, err := cl.List(ctx, "hello")
	require.NoError(t, err)
	require.Len(t, insts, 2, "a and c stay registered: %v", insts)

	// Restart the killed node from its data: it catches up.
	cfgs[li].join, cfgs[li].bootstrap = "", false
	s, err := startRegistry(ctx, cfgs[li])
	require.NoError(t, err)
	regs[li] = s
	local, err := registry.New(s.Node, registry.Options{})
	require.NoError(t, err)
	eventually(t, ctx, "the restarted node lists a and c", func() bool {
		insts, _, err := local.List(ctx, "hello", consensus.Stale)
		return err == nil && len(insts) == 2
	})
}

// An instance that deregisters is drained by the client's balancer, not
// cut: the request in flight to it finishes, no new request goes to it,
// and it is removed once it is idle.
func TestDeregisteredInstanceIsDrained(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := startRegistry(ctx, config{role: "registry", id: "n1", raftAddr: "127.0.0.1:0", httpAddr: freeAddr(t), dataDir: t.TempDir(), bootstrap: true})
	require.NoError(t, err)
	defer s.Close()
	eventually(t, ctx, "n1 leads", s.Node.IsLeader)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl, err := registry.NewClient([]string{"http://" + s.HTTPAddr()}, registry.ClientOptions{HTTP: &http.Client{Transport: tr}, RetryWait: 20 * time.Millisecond})
	require.NoError(t, err)

	a := startInstance(t, ctx, cl, "a", time.Minute)
	defer a.kill()
	entered, release := make(chan struct{}), make(chan struct{})
	slow := startInstanceWith(t, ctx, cl, "slow", time.Minute, func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		fmt.Fprintln(w, "hello from slow")
	})
	defer func() { _ = slow.srv.Close() }()

	wctx, stopWatch := context.WithCancel(ctx)
	client := follow(wctx, cl.Source("hello"))
	defer func() { stopWatch(); <-client.done }()
	bal, err := client.balancer(ctx)
	require.NoError(t, err)
	eventually(t, ctx, "the client sees a and slow", func() bool { return len(bal.Backends()) == 2 })

	// A request to slow is in flight when slow deregisters.
	p, err := bal.Pick(ctx, lb.Request{})
	for ; err == nil && p.Addr() != slow.addr; p, err = bal.Pick(ctx, lb.Request{}) {
		p.Done(lb.Result{})
	}
	require.NoError(t, err)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	inflight := make(chan string, 1)
	go func() {
		defer p.Done(lb.Result{})
		resp, err := hc.Get("http://" + p.Addr() + "/")
		if err != nil {
			inflight <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		inflight <- strings.TrimSpace(string(body))
	}()
	<-entered
	slow.stop() // no more heartbeats, which would register it again
	<-slow.done
	require.NoError(t, cl.Deregister(ctx, "hello", "slow"))

	state := func() (lb.State, int64, bool) {
		for _, bs := range bal.Stats().Backends {
			if bs.Addr == slow.addr {
				return bs.State, bs.InFlight, true
			}
		}
		return 0, 0, false
	}
	eventually(t, ctx, "slow drains", func() bool { st, _, _ := state(); return st == lb.StateDraining })
	for range 20 {
		body, err := get(ctx, hc, bal)
		require.NoError(t, err)
		assert.Equal(t, "hello from a", strings.TrimSpace(body), "no new request goes to a draining instance")
	}
	st, n, ok := state()
	require.True(t, ok, "slow is drained, not cut, while its request is in flight")
	assert.Equal(t, lb.StateDraining, st)
	assert.EqualValues(t, 1, n)

	close(release)
	assert.Equal(t, "hello from slow", <-inflight, "the request in flight finishes")
	eventually(t, ctx, "slow is removed once idle", func() bool { _, _, ok := state(); return !ok })
	assert.Equal(t, []string{a.addr}, addrs(bal))
}

// watchElections reports when any of the registry nodes last saw a new
// term begin (a leader take office) after the call.
func watchElections(t *testing.T, ctx context.Context, regs []*raftserve.Server) func() time.Time {
	t.Helper()
	var (
		mu   sync.Mutex
		last time.Time
	)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, s := range regs {
		states := s.Node.Subscribe(ctx)
		wg.Go(func() {
			var term uint64
			for st := range states {
				if term != 0 && st.Term > term {
					mu.Lock()
					last = time.Now()
					mu.Unlock()
				}
				term = max(term, st.Term)
			}
		})
	}
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

func hosts(urls []string) []string {
	var out []string
	for _, u := range urls {
		out = append(out, strings.TrimPrefix(u, "http://"))
	}
	return out
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"server"},
		{"registry", "-data", "/tmp/x", "-http", "127.0.0.1:1"},
		{"registry", "-id", "n1", "-http", "127.0.0.1:1"},
		{"registry", "-id", "n1", "-data", "/tmp/x"},
		{"registry", "-id", "n1", "-data", "/tmp/x", "-http", "127.0.0.1:1", "-bootstrap", "-join", "127.0.0.1:2"},
		{"instance", "-id", "a", "-http", "127.0.0.1:1"},
		{"instance", "-http", "127.0.0.1:1", "-registry", "127.0.0.1:2"},
		{"client", "-registry", "127.0.0.1:2", "-requests", "0"},
		{"proxy", "-registry", "127.0.0.1:2"},
	} {
		_, err := parse(args)
		assert.Error(t, err, "%v", args)
	}
	c, err := parse([]string{"client", "-registry", "127.0.0.1:1,127.0.0.1:2"})
	require.NoError(t, err)
	assert.Equal(t, []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, c.registry)
	c, err = parse([]string{"client", "-registry", "127.0.0.1:1", "-tls-ca", "/tmp/ca.crt", "-token", "t"})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://127.0.0.1:1"}, c.registry)
	for _, args := range [][]string{
		{"registry", "-id", "n1", "-data", "/tmp/x", "-http", "127.0.0.1:1", "-users", "/tmp/users.json"},
		{"client", "-registry", "127.0.0.1:2", "-token", "t"},
	} {
		_, err := parse(args)
		assert.ErrorContains(t, err, "plain HTTP", "%v", args)
	}
}

// The README's locked-down registry: nodes joined over HTTPS under their
// certificates; an instance's token registers its service through a
// follower, a reader's token lists but cannot register, a caller without
// a token is refused, and half a TLS setup stops a node.
func TestLockedDownRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	require.NoError(t, lockdown.WriteCerts(tlsDir, []string{"n1", "n2"}))
	users := filepath.Join(dir, "users.json")
	require.NoError(t, os.WriteFile(users, []byte(`[{"name":"n1","role":"admin"},{"name":"n2","role":"admin"},
		{"name":"hello","token":"hello-token-0123456789abcdef","role":"read-write","prefix":"hello"},
		{"name":"viewer","token":"viewer-token-0123456789abc","role":"read-only"}]`), 0o600))
	node := func(id string) config {
		return config{role: "registry", id: id, raftAddr: "127.0.0.1:0", httpAddr: freeAddr(t), dataDir: filepath.Join(dir, id),
			tlsCert: filepath.Join(tlsDir, id+".crt"), tlsKey: filepath.Join(tlsDir, id+".key"), tlsCA: filepath.Join(tlsDir, "ca.crt"), users: users}
	}
	c1 := node("n1")
	c1.bootstrap = true
	s1, err := startRegistry(ctx, c1)
	require.NoError(t, err)
	defer s1.Close()
	eventually(t, ctx, "n1 leads", s1.Node.IsLeader)
	c2 := node("n2")
	c2.join = s1.HTTPAddr()
	s2, err := startRegistry(ctx, c2)
	require.NoError(t, err)
	defer s2.Close()

	client := func(token string) *registry.Client {
		cl, closeIdle, err := registryClient(config{registry: []string{"https://" + s2.HTTPAddr()}, tlsCA: filepath.Join(tlsDir, "ca.crt"), token: token})
		require.NoError(t, err)
		t.Cleanup(closeIdle)
		return cl
	}
	_, err = client("hello-token-0123456789abcdef").Register(ctx, registry.Instance{Service: "hello", ID: "a", Addr: "127.0.0.1:9"}, time.Minute)
	require.NoError(t, err, "through the follower, forwarded with the token")
	_, err = client("viewer-token-0123456789abc").Register(ctx, registry.Instance{Service: "hello", ID: "b", Addr: "127.0.0.1:9"}, time.Minute)
	assert.ErrorIs(t, err, consensus.ErrForbidden)
	insts, _, err := client("viewer-token-0123456789abc").List(ctx, "hello")
	require.NoError(t, err)
	assert.Len(t, insts, 1)
	_, _, err = client("").List(ctx, "hello")
	assert.ErrorIs(t, err, consensus.ErrUnauthenticated)

	half := node("n3")
	half.tlsKey = ""
	_, err = startRegistry(ctx, half)
	require.ErrorIs(t, err, consensus.ErrInvalidConfig)
	assert.ErrorContains(t, err, "[key]")
}
