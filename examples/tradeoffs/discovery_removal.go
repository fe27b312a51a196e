package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/lb"
)

var discoveryRemovalExperiment = lab.Experiment{
	Name:      "discovery-removal",
	Group:     "discovery",
	Title:     "from an instance's death to its removal: lease TTL, heartbeats and active health checks",
	Section:   "Microservices Architecture → Service Discovery",
	Guide:     "Service Registry: Central registry of service instances; Health Checks: Regular health monitoring",
	WallClock: true,
	Run:       runDiscoveryRemoval,
}

// Active checks in this experiment: a probe every 100 ms, two failures in
// a row mark the instance critical.
const (
	removalCheckEvery = 100 * time.Millisecond
	removalCheckFails = 2
)

type removalPoint struct {
	ttl, heartbeat time.Duration
	checks         bool
	removal        []time.Duration // death → removal from the balancer, per trial
	bound          []time.Duration // the lease's bound for the trial, measured from death (see removalTrial)
	failed         int             // requests that failed between death and removal
	after          int             // requests that failed once the instance had left
	sent           int             // requests sent between death and removal
}

func discoveryRemovalRun(ctx context.Context, env *lab.Env) ([]removalPoint, error) {
	type setup struct {
		ttl, hb time.Duration
		checks  bool
	}
	ttls := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
	if env.Quick {
		ttls = ttls[:1]
	}
	var setups []setup
	for _, ttl := range ttls {
		for _, checks := range []bool{false, true} {
			setups = append(setups, setup{ttl, ttl / 3, checks})
		}
	}
	if !env.Quick {
		setups = append(setups, setup{time.Second, time.Second / 2, false}, setup{time.Second, time.Second / 2, true})
	}
	trials := env.Scale(4, 2)
	c, err := discoveryCluster(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	bar := env.Progress(int64(len(setups)*trials), "instance deaths")
	defer bar.Done()
	rng := env.Rand(1)
	var out []removalPoint
	n := 0
	for _, s := range setups {
		p := removalPoint{ttl: s.ttl, heartbeat: s.hb, checks: s.checks}
		for range trials {
			n++
			phase := time.Duration(rng.Int64N(int64(s.hb)))
			if err := removalTrial(ctx, c, fmt.Sprint("svc", n), s.ttl, s.hb, s.checks, phase, &p); err != nil {
				return nil, err
			}
			bar.Add(1)
		}
		out = append(out, p)
	}
	return out, nil
}

// removalTrial registers two instances, kills one phase into a heartbeat
// interval, and sends requests through a balancer that follows the
// registry from a follower until the dead one has left.
func removalTrial(ctx context.Context, c *consensus.LocalCluster, svc string, ttl, hb time.Duration, checks bool, phase time.Duration, p *removalPoint) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return err
	}
	reg, err := registry.New(leader, registry.Options{MinTTL: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	var follower *consensus.Node
	for _, n := range c.Nodes() {
		if n != leader {
			follower = n
		}
	}
	freg, err := registry.New(follower, registry.Options{})
	if err != nil {
		return err
	}
	alive, err := startHello("alive")
	if err != nil {
		return err
	}
	defer alive.kill()
	victim, err := startHello("victim")
	if err != nil {
		return err
	}
	var leases []consensus.LeaseID
	// Only the victim's lease is measured: the live instance's is long
	// enough that heartbeats a busy machine runs late cannot let it lapse.
	for i, h := range []*helloServer{alive, victim} {
		r, err := reg.Register(ctx, registry.Instance{Service: svc, ID: fmt.Sprint(i), Addr: h.addr}, []time.Duration{time.Minute, ttl}[i])
		if err != nil {
			victim.kill()
			return err
		}
		leases = append(leases, r.Lease)
	}
	// Heartbeats: the victim's stop at its death.
	var wg sync.WaitGroup
	beat := func(ctx context.Context, lease consensus.LeaseID) {
		defer wg.Done()
		t := time.NewTicker(hb)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = reg.Heartbeat(ctx, lease)
			}
		}
	}
	victimCtx, stopVictim := context.WithCancel(ctx)
	defer stopVictim()
	wg.Add(2)
	go beat(ctx, leases[0])
	go beat(victimCtx, leases[1])
	defer wg.Wait()
	defer cancel()

	var hc *lb.HealthChecker
	if checks {
		hc, err = lb.NewHealthChecker(reg.HealthTarget(svc), lb.HealthCheckOptions{Interval: removalCheckEvery, Timeout: removalCheckEvery,
			UnhealthyThreshold: removalCheckFails, HealthyThreshold: 1})
		if err != nil {
			victim.kill()
			return err
		}
		hc.Start(ctx)
		defer hc.Close(context.Background())
	}

	// The balancer follows the follower's view through lb.Follow; gone
	// records when the victim left the rotation (drained, or removed).
	var (
		mu   sync.Mutex
		gone time.Time
	)
	bal, followed, err := followSource(ctx, freg.Source(svc), 2, lb.Options{OnEvent: func(e lb.Event) {
		if e.Addr == victim.addr && (e.Kind == lb.EventRemoved || e.To == lb.StateDraining) {
			mu.Lock()
			if gone.IsZero() {
				gone = time.Now()
			}
			mu.Unlock()
		}
	}})
	if err != nil {
		victim.kill()
		return err
	}
	defer func() { cancel(); <-followed }()
	if checks { // let the checks see both healthy once
		time.Sleep(removalCheckEvery)
	}
	time.Sleep(phase)
	elected := lastElection(ctx, c)
	stopVictim()
	victim.kill()
	died := time.Now()

	// A second's timeout: the dead instance refuses at once, and a busy
	// machine may answer the live one late.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := died.Add(ttl + 5*time.Second)
	var left time.Time
	for time.Now().Before(deadline) {
		mu.Lock()
		g := gone
		mu.Unlock()
		if !g.IsZero() && left.IsZero() {
			left = g
			p.removal = append(p.removal, g.Sub(died))
		}
		if !left.IsZero() && time.Since(left) > 100*time.Millisecond {
			break // 100 ms of requests after it left
		}
		err := discoveryGet(ctx, client, bal)
		switch {
		case left.IsZero():
			p.sent++
			if err != nil {
				p.failed++
			}
		case err != nil:
			p.after++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if left.IsZero() {
		return errors.New("the dead instance was never removed")
	}
	// The lease's bound (see consensus.Node.GrantLease): TTL + one sweep +
	// a commit from its last heartbeat, or from the election of a leader
	// that took office meanwhile; the commit (and the watch's delivery) is
	// timed here as a registration, as a busy machine stretches both alike.
	var commit time.Duration
	for {
		l, err := c.WaitLeader(ctx)
		if err != nil {
			return err
		}
		preg, err := registry.New(l, registry.Options{MinTTL: 100 * time.Millisecond})
		if err != nil {
			return err
		}
		start := time.Now()
		_, err = preg.Register(ctx, registry.Instance{Service: svc + "-probe", ID: "p", Addr: "127.0.0.1:1"}, ttl)
		if commit = time.Since(start); !errors.Is(err, consensus.ErrNotLeader) {
			if err != nil {
				return err
			}
			break
		}
	}
	from := died
	if e := elected(); e.After(from) {
		from = e
	}
	p.bound = append(p.bound, from.Sub(died)+ttl+discoverySweep+2*commit+100*time.Millisecond)
	return nil
}

func runDiscoveryRemoval(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	points, err := discoveryRemovalRun(ctx, env)
	if err != nil {
		return nil, err
	}
	tb := lab.NewTable(fmt.Sprintf("two instances, one killed (no deregistration); a client sends a GET every 2 ms through a balancer fed by a follower's watch; lease sweep every %v; active checks every %v, critical after %d failures", discoverySweep, removalCheckEvery, removalCheckFails),
		"TTL", "heartbeat", "active checks", "trials", "removal min", "removal mean", "removal max", "bound (TTL + sweep)", "failed in the window", "failed after removal")
	for _, p := range points {
		s := sortedCopy(p.removal)
		checks := "off"
		if p.checks {
			checks = "on"
		}
		bound := p.ttl + discoverySweep
		tb.AddRow(p.ttl, p.heartbeat, checks, len(s), s[0], discoveryMean(s), s[len(s)-1], bound,
			fmt.Sprintf("%d of %d (%.0f%%)", p.failed, p.sent, 100*float64(p.failed)/float64(max(p.sent, 1))), p.after)
	}
	verdict, reason := discoveryRemovalVerdict(points)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{tb}, Notes: []string{
		"The registry (leases on the Raft store) removes a dead instance on its own, without checks within TTL + one sweep interval of its last heartbeat; regular health monitoring (lb.HealthChecker marking the instance critical in the registry) removes it sooner. The verdict says whether both held in every trial and configuration.",
		"Without checks the window is the lease's remaining life: an instance dies between two heartbeats, so it leaves between TTL − heartbeat and TTL after its death, plus up to one sweep interval and a commit. A shorter TTL shrinks the window at the price of more heartbeats (one write through the Raft log each) and a greater risk of dropping a live instance that pauses.",
		"With active checks the window is about the check interval × the failure threshold, whatever the TTL; the lease still removes an instance whose checks cannot run (the checker died with the leader) and one that is partitioned from the registry.",
		"Every request in the window that the balancer sends to the dead instance fails (round robin gives it half); once it has left the balancer's set no request fails ('failed after removal').",
		"Wall-clock measurement on loopback with an in-memory Raft cluster: absolute numbers vary with the machine's load.",
	}}, nil
}

// discoveryRemovalVerdict judges "service registry ... health checks:
// regular health monitoring": the registry's leases remove a dead instance
// within TTL + one sweep without checks, and active checks remove it
// sooner, at every TTL.
func discoveryRemovalVerdict(points []removalPoint) (lab.Verdict, string) {
	within, faster := true, true
	var worst, bound time.Duration
	mean := map[time.Duration]map[bool]time.Duration{}
	var ttls []time.Duration
	for _, p := range points {
		s := sortedCopy(p.removal)
		if !p.checks {
			b := p.ttl + discoverySweep
			if s[len(s)-1] > b+100*time.Millisecond {
				within = false
			}
			if s[len(s)-1]-b > worst-bound || bound == 0 {
				worst, bound = s[len(s)-1], b
			}
		}
		if mean[p.ttl] == nil {
			mean[p.ttl] = map[bool]time.Duration{}
			ttls = append(ttls, p.ttl)
		}
		mean[p.ttl][p.checks] = discoveryMean(s)
	}
	var parts []string
	for _, ttl := range ttls {
		m := mean[ttl]
		faster = faster && m[true] < m[false]
		parts = append(parts, fmt.Sprintf("TTL %v: %v with checks, %v without", ttl, lab.Format(m[true]), lab.Format(m[false])))
	}
	numbers := fmt.Sprintf("without checks the slowest removal took %v against a bound of TTL + one sweep = %v; mean removal %s", lab.Format(worst), bound, strings.Join(parts, "; "))
	return lab.Judge(within && faster, "The registry removes a dead instance on its own, and health monitoring removes it sooner: "+numbers+".",
		lab.Nuance, "Not both held: "+numbers+".")
}

// lastElection reports when a node of c last saw a new term begin (a
// leader take office) after the call, until ctx ends.
func lastElection(ctx context.Context, c *consensus.LocalCluster) func() time.Time {
	var (
		mu   sync.Mutex
		last time.Time
	)
	for _, n := range c.Nodes() {
		states := n.Subscribe(ctx)
		go func() {
			var term uint64
			for st := range states {
				if term != 0 && st.Term > term {
					mu.Lock()
					last = time.Now()
					mu.Unlock()
				}
				term = max(term, st.Term)
			}
		}()
	}
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}
