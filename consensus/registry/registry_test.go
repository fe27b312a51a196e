package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/lb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTiming leaves room for a loaded machine under -race.
func testTiming() consensus.Timing {
	return consensus.Timing{HeartbeatTimeout: 150 * time.Millisecond, ElectionTimeout: 150 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, CommitTimeout: 5 * time.Millisecond, FastFailover: true}
}

const ttl = 500 * time.Millisecond

func newCluster(t *testing.T, opts consensus.Options) (*consensus.LocalCluster, context.Context) {
	t.Helper()
	opts.Timing = testTiming()
	if opts.LeaseSweepInterval == 0 {
		opts.LeaseSweepInterval = 10 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Node: opts})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	return c, ctx
}

func newRegistry(t *testing.T, n *consensus.Node) *registry.Registry {
	t.Helper()
	r, err := registry.New(n, registry.Options{MinTTL: ttl})
	require.NoError(t, err)
	return r
}

func leaderRegistry(t *testing.T, ctx context.Context, c *consensus.LocalCluster) *registry.Registry {
	t.Helper()
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	return newRegistry(t, l)
}

func follower(t *testing.T, ctx context.Context, c *consensus.LocalCluster) *consensus.Node {
	t.Helper()
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	for _, n := range c.Nodes() {
		if n != l {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

func TestRegistry_RegisterListDeregisterAndBadInput(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	r := leaderRegistry(t, ctx, c)
	web := registry.Instance{Service: "web", ID: "a", Addr: "10.0.0.1:80", Zone: "z1", Meta: map[string]string{"v": "1"}}

	bad := []struct {
		name string
		inst registry.Instance
		ttl  time.Duration
	}{
		{"empty service", registry.Instance{ID: "a", Addr: "x:1"}, ttl},
		{"service with a slash", registry.Instance{Service: "a/b", ID: "a", Addr: "x:1"}, ttl},
		{"empty id", registry.Instance{Service: "web", Addr: "x:1"}, ttl},
		{"empty address", registry.Instance{Service: "web", ID: "a"}, ttl},
		{"negative weight", registry.Instance{Service: "web", ID: "a", Addr: "x:1", Weight: -1}, ttl},
		{"zero TTL", web, 0},
		{"negative TTL", web, -time.Second},
		{"TTL below the minimum", web, ttl - time.Millisecond},
	}
	for _, tc := range bad {
		_, err := r.Register(ctx, tc.inst, tc.ttl)
		require.ErrorIs(t, err, registry.ErrInvalid, tc.name)
	}
	insts, _, err := r.List(ctx, "web", consensus.Linearizable)
	require.NoError(t, err)
	require.Empty(t, insts, "no bad registration wrote anything")

	reg, err := r.Register(ctx, web, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, registry.Passing, reg.Instance.Status)
	assert.Equal(t, 1.0, reg.Instance.Weight, "zero weight means 1")
	_, err = r.Register(ctx, registry.Instance{Service: "web", ID: "a", Addr: "10.0.0.9:80"}, time.Minute)
	require.ErrorIs(t, err, registry.ErrDuplicateInstance)
	assert.Contains(t, err.Error(), "10.0.0.9:80")
	insts, _, err = r.List(ctx, "web", consensus.Linearizable)
	require.NoError(t, err)
	require.Len(t, insts, 1)
	assert.Equal(t, "10.0.0.1:80", insts[0].Addr, "the duplicate changed nothing")

	// The same instance restarting moves to its new lease: the old one's
	// revocation no longer removes it.
	again, err := r.Register(ctx, web, time.Minute)
	require.NoError(t, err)
	require.NotEqual(t, reg.Lease, again.Lease)
	require.NoError(t, r.Heartbeat(ctx, again.Lease))
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, leader.RevokeLease(ctx, reg.Lease))
	insts, _, err = r.List(ctx, "web", consensus.Linearizable)
	require.NoError(t, err)
	require.Len(t, insts, 1)
	_, err = r.Register(ctx, registry.Instance{Service: "web", ID: "b", Addr: "10.0.0.2:80", Weight: 2}, time.Minute)
	require.NoError(t, err)
	_, err = r.Register(ctx, registry.Instance{Service: "webx", ID: "c", Addr: "10.0.0.3:80"}, time.Minute)
	require.NoError(t, err)
	insts, rev, err := r.List(ctx, "web", consensus.Linearizable)
	require.NoError(t, err)
	require.Len(t, insts, 2, "service webx is not web")
	assert.Equal(t, []string{"a", "b"}, []string{insts[0].ID, insts[1].ID})
	assert.Positive(t, rev)

	require.NoError(t, r.Deregister(ctx, "web", "a"))
	require.ErrorIs(t, r.Deregister(ctx, "web", "a"), registry.ErrNotRegistered)
	require.ErrorIs(t, r.Heartbeat(ctx, again.Lease), registry.ErrNotRegistered, "deregistered")
	require.ErrorIs(t, r.Heartbeat(ctx, 987654), registry.ErrNotRegistered, "unknown lease")
	require.ErrorIs(t, r.Deregister(ctx, "", "a"), registry.ErrInvalid)
	_, _, err = r.List(ctx, "", consensus.Stale)
	require.ErrorIs(t, err, registry.ErrInvalid)
	require.ErrorIs(t, r.Watch(ctx, "web", nil), registry.ErrInvalid)

	// Writes on a follower name the leader.
	_, err = newRegistry(t, follower(t, ctx, c)).Register(ctx, web, time.Minute)
	require.ErrorIs(t, err, consensus.ErrNotLeader)
	_, err = registry.New(nil, registry.Options{})
	require.ErrorIs(t, err, registry.ErrInvalid)
}

// watchInto has lb.Follow keep b equal to src, and
// returns a function that reports the addresses src reported last.
func watchInto(t *testing.T, ctx context.Context, src *registry.Source, b *lb.Balancer) (addrs func() []string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu   sync.Mutex
		last []string
	)
	watched, followed := make(chan error, 1), make(chan error, 1)
	go func() { followed <- lb.Follow(ctx, b, src) }()
	go func() {
		watched <- src.Watch(ctx, func(bs []lb.Backend) {
			mu.Lock()
			last = last[:0]
			for _, x := range bs {
				last = append(last, x.Addr)
			}
			mu.Unlock()
		})
	}()
	addrs = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), last...)
	}
	return addrs, func() error {
		// Stop once the balancer has applied the source's last set:
		// Follow is not stopped in the middle of an update.
		eventually(t, ctx, "the balancer has the source's set", func() bool {
			var in []string
			for _, x := range b.Backends() {
				in = append(in, x.Addr)
			}
			now := addrs()
			slices.Sort(in)
			slices.Sort(now)
			return slices.Equal(in, now)
		})
		cancel()
		return errors.Join(<-watched, <-followed)
	}
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// An instance that stops heartbeating leaves a follower's watch, and the
// balancer it feeds, within TTL + a sweep interval; one that heartbeats
// stays; the watch survives a leader change.
func TestRegistry_SourceFollowsRegistrationsExpiryAndLeaderChange(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	r := leaderRegistry(t, ctx, c)
	var regs []registry.Registration
	for i := range 3 {
		reg, err := r.Register(ctx, registry.Instance{Service: "api", ID: fmt.Sprint(i), Addr: fmt.Sprintf("10.0.0.%d:80", i)}, ttl)
		require.NoError(t, err)
		regs = append(regs, reg)
	}
	f := follower(t, ctx, c)
	b, err := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "placeholder:1", Weight: 1}}, lb.Options{})
	require.NoError(t, err)
	addrs, stop := watchInto(t, ctx, newRegistry(t, f).Source("api"), b)
	want := []string{"10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"}
	eventually(t, ctx, "the follower's watch lists the three", func() bool { return fmt.Sprint(addrs()) == fmt.Sprint(want) })
	eventually(t, ctx, "the balancer follows the source", func() bool { return len(b.Backends()) == 3 })

	// Instances 0 and 1 heartbeat; instance 2 has died.
	var died time.Time
	heartbeat := func(reg *registry.Registry, deadline time.Time) {
		for time.Now().Before(deadline) {
			for _, g := range regs[:2] {
				err := reg.Heartbeat(ctx, g.Lease)
				if !errors.Is(err, consensus.ErrNotLeader) && !errors.Is(err, consensus.ErrIndeterminate) {
					require.NoError(t, err)
				}
			}
			time.Sleep(ttl / 5)
		}
	}
	died = time.Now()
	heartbeat(r, died.Add(ttl+300*time.Millisecond))
	eventually(t, ctx, "the dead instance leaves", func() bool { return len(addrs()) == 2 })
	left := time.Since(died)
	assert.Less(t, left, ttl+400*time.Millisecond, "left within TTL + sweep + slack")
	assert.Equal(t, want[:2], addrs())
	eventually(t, ctx, "the balancer drops it", func() bool { return len(b.Backends()) == 2 })

	// The leader crashes: the follower's watch goes on, the survivors
	// keep their registrations through the new leader (etcd's rule gives
	// them a TTL from its election), and a new instance appears.
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Crash(old.ID()))
	var nl *consensus.Node
	for nl == nil || nl == f {
		if nl, err = c.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if nl == f { // the watching follower became the leader: fine too
			break
		}
	}
	r2 := newRegistry(t, nl)
	heartbeat(r2, time.Now().Add(ttl))
	_, err = r2.Register(ctx, registry.Instance{Service: "api", ID: "3", Addr: "10.0.0.3:80"}, ttl)
	require.NoError(t, err)
	eventually(t, ctx, "the new instance appears on the same watch", func() bool { return len(addrs()) == 3 })
	assert.Equal(t, []string{"10.0.0.0:80", "10.0.0.1:80", "10.0.0.3:80"}, addrs())
	require.ErrorIs(t, stop(), context.Canceled)
}

// Active checks through lb.HealthChecker mark an instance critical, which
// takes it out of every source's set while it stays registered, and
// passing again when it recovers.
func TestRegistry_ActiveHealthChecksMarkInstancesCritical(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	r := leaderRegistry(t, ctx, c)
	for i := range 2 {
		_, err := r.Register(ctx, registry.Instance{Service: "api", ID: fmt.Sprint(i), Addr: fmt.Sprintf("10.0.0.%d:80", i)}, time.Minute)
		require.NoError(t, err)
	}
	var mu sync.Mutex
	down := map[string]bool{"10.0.0.1:80": true}
	hc, err := lb.NewHealthChecker(r.HealthTarget("api"), lb.HealthCheckOptions{
		Interval: time.Hour, UnhealthyThreshold: 1, HealthyThreshold: 1,
		Probe: func(_ context.Context, b lb.Backend) error {
			mu.Lock()
			defer mu.Unlock()
			if down[b.Addr] {
				return errors.New("connection refused")
			}
			return nil
		},
	})
	require.NoError(t, err)
	b, err := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "placeholder:1", Weight: 1}}, lb.Options{})
	require.NoError(t, err)
	addrs, stop := watchInto(t, ctx, r.Source("api"), b)
	eventually(t, ctx, "both listed", func() bool { return len(addrs()) == 2 })

	hc.CheckNow(ctx)
	eventually(t, ctx, "the failing instance leaves the source", func() bool { return fmt.Sprint(addrs()) == "[10.0.0.0:80]" })
	insts, _, err := r.List(ctx, "api", consensus.Linearizable)
	require.NoError(t, err)
	require.Len(t, insts, 2, "a critical instance stays registered")
	assert.Equal(t, registry.Critical, insts[1].Status)

	mu.Lock()
	down["10.0.0.1:80"] = false
	mu.Unlock()
	hc.CheckNow(ctx)
	eventually(t, ctx, "it returns once it passes", func() bool { return len(addrs()) == 2 })
	require.ErrorIs(t, stop(), context.Canceled)
}

// A registry keeps its instances under Prefix, "registry/" by default, as
// "<prefix><service>/<id>": two prefixes on one cluster do not see each
// other's instances.
func TestRegistry_KeysLiveUnderThePrefix(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	def := newRegistry(t, l)
	own, err := registry.New(l, registry.Options{Prefix: "svc/", MinTTL: ttl})
	require.NoError(t, err)
	_, err = def.Register(ctx, registry.Instance{Service: "api", ID: "a", Addr: "10.0.0.1:80"}, time.Minute)
	require.NoError(t, err)
	_, err = own.Register(ctx, registry.Instance{Service: "api", ID: "b", Addr: "10.0.0.2:80"}, time.Minute)
	require.NoError(t, err)
	for key, addr := range map[string]string{"registry/api/a": "10.0.0.1:80", "svc/api/b": "10.0.0.2:80"} {
		kv, err := l.Get(ctx, key)
		require.NoError(t, err, key)
		var inst registry.Instance
		require.NoError(t, json.Unmarshal(kv.Value, &inst))
		assert.Equal(t, addr, inst.Addr, key)
	}
	insts, _, err := def.List(ctx, "api", consensus.Linearizable)
	require.NoError(t, err)
	require.Len(t, insts, 1)
	assert.Equal(t, "a", insts[0].ID)
}

// Watch calls update once with the current set, then once per change:
// the change it listed is not replayed.
func TestRegistry_WatchCallsUpdateOncePerChange(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	r := leaderRegistry(t, ctx, c)
	_, err := r.Register(ctx, registry.Instance{Service: "api", ID: "a", Addr: "10.0.0.1:80"}, time.Minute)
	require.NoError(t, err)
	updates := make(chan []string, 16)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- r.Watch(wctx, "api", func(insts []registry.Instance) {
			var ids []string
			for _, i := range insts {
				ids = append(ids, i.ID)
			}
			updates <- ids
		})
	}()
	assert.Equal(t, []string{"a"}, <-updates)
	_, err = r.Register(ctx, registry.Instance{Service: "api", ID: "b", Addr: "10.0.0.2:80"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, <-updates)
	stop()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Empty(t, updates)
}
