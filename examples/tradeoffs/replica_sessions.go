package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

var replicaSessionsExperiment = lab.Experiment{
	Name:      "replica-sessions",
	Group:     "replica",
	Title:     "session guarantees: violations per 10,000 operations with and without a session token",
	Section:   "Distributed Systems → Consistency Models",
	Guide:     "Read-Your-Writes: User sees their own writes immediately ... Monotonic Reads: User never sees older data in subsequent reads ... Session Consistency: Consistency within a user session",
	WallClock: true,
	Run:       runReplicaSessions,
}

// sessionRun is one run of the session workload.
type sessionRun struct {
	tokens     bool
	ops        int
	refused    int // reads that found no replica as recent as the session
	violations replica.SessionViolations
	latency    []time.Duration // sorted
}

// replicaSessionsRun has clients do read-modify-writes and reads at ONE on
// a few shared keys, each request through a coordinator picked at random
// (no session affinity), on a network with exponential one-way latency;
// with tokens, each client carries its session from one coordinator to the
// next as a token.
func replicaSessionsRun(ctx context.Context, env *lab.Env, tokens bool) (sessionRun, error) {
	res := sessionRun{tokens: tokens}
	rc, err := newReplicaCluster(3)
	if err != nil {
		return res, err
	}
	defer rc.close()
	rc.net.SetLatency(expLatency(env.Rand(11), 500*time.Microsecond))
	cfg := replica.Config{N: 3, SessionKey: []byte("lab"), DisableReadRepair: true}
	coords := make([]*replica.Coordinator, 3)
	for i := range coords {
		if coords[i], err = rc.coordinator(fmt.Sprintf("coordinator-%d", i), cfg); err != nil {
			return res, err
		}
	}
	const clients = 8
	perClient := env.Scale(10_000, 1_000) / clients
	var (
		mu      sync.Mutex
		history []replica.SessionEvent
		wg      sync.WaitGroup
		errs    = make([]error, clients)
	)
	for cl := range clients {
		rng := env.Rand(100 + uint64(cl))
		wg.Go(func() {
			var token string
			name := fmt.Sprintf("client-%d", cl)
			pick := func() (*replica.Coordinator, *replica.Session, error) {
				c := coords[rng.IntN(len(coords))]
				if !tokens {
					return c, nil, nil
				}
				if token == "" {
					return c, new(replica.Session), nil
				}
				s, err := c.ResumeSession(token)
				return c, s, err
			}
			record := func(key string, write bool, r *replica.Result, d time.Duration, c *replica.Coordinator, s *replica.Session) {
				if s != nil {
					token = c.SessionToken(s)
				}
				mu.Lock()
				defer mu.Unlock()
				history = append(history, replica.SessionEvent{Session: name, Key: key, Write: write, Result: r})
				res.latency = append(res.latency, d)
			}
			for op := 0; op < perClient; {
				key := fmt.Sprintf("profile-%d", rng.IntN(4))
				c, s, err := pick()
				if err != nil {
					errs[cl] = err
					return
				}
				start := time.Now()
				got, err := c.Get(ctx, key, replica.Options{Level: replica.One, Session: s})
				op++
				var cc replica.Context
				switch {
				case err == nil:
					record(key, false, got, time.Since(start), c, s)
					cc = got.Context
				case errors.Is(err, replica.ErrSessionUnavailable):
					mu.Lock()
					res.refused++
					mu.Unlock()
					continue
				case !errors.Is(err, replica.ErrNotFound):
					errs[cl] = err
					return
				}
				if rng.IntN(2) == 0 {
					continue // a read-only visit
				}
				c, s, err = pick()
				if err != nil {
					errs[cl] = err
					return
				}
				start = time.Now()
				w, err := c.Put(ctx, key, fmt.Appendf(nil, "%s-%d", name, op), cc, replica.Options{Level: replica.One, Session: s})
				op++
				if err != nil {
					errs[cl] = err
					return
				}
				record(key, true, w, time.Since(start), c, s)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.ops = len(history) + res.refused
	res.violations = replica.CheckSessions(history)
	slices.Sort(res.latency)
	return res, nil
}

func runReplicaSessions(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	tb := lab.NewTable("8 clients, 4 shared keys, requests at ONE through one of 3 coordinators at random; violations per 10,000 operations",
		"session token", "operations", "read-your-writes", "monotonic reads", "monotonic writes", "writes-follow-reads", "reads refused", "p50 latency", "p99 latency")
	var runs []sessionRun
	for _, tokens := range []bool{false, true} {
		r, err := replicaSessionsRun(ctx, env, tokens)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
		per := func(n int) string { return fmt.Sprintf("%.1f", 10_000*float64(n)/float64(r.ops)) }
		v := r.violations
		tb.AddRow(map[bool]string{false: "no", true: "yes"}[tokens], r.ops, per(v.ReadYourWrites), per(v.MonotonicReads), per(v.MonotonicWrites),
			per(v.WritesFollowReads), r.refused, percentile(r.latency, 0.5), percentile(r.latency, 0.99))
	}
	without, with := runs[0], runs[1]
	notes := []string{
		fmt.Sprintf("Without a token a client whose requests land on different coordinators breaks its own session: %d read-your-writes and %d monotonic-read violations in %d operations, because a read at ONE may be answered by a replica the client's last write has not reached yet.",
			without.violations.ReadYourWrites, without.violations.MonotonicReads, without.ops),
		fmt.Sprintf("With the token (the session's version vectors, signed, carried to the next coordinator) the same workload breaks none (%d): a read waits for a replica as recent as the session, which costs p99 latency (%v against %v).",
			with.violations.Total(), percentile(with.latency, 0.99), percentile(without.latency, 0.99)),
		"The guide's implementations for these guarantees are session affinity, client-side caching and version vectors; the token is the version-vector one, and it works with no affinity at all.",
	}
	v, reason := replicaSessionsVerdict(without, with)
	return &lab.Result{Verdict: v, Reason: reason, Tables: []*lab.Table{tb}, Notes: notes}, nil
}

// replicaSessionsVerdict judges "Read-Your-Writes: User sees their own
// writes immediately ... Monotonic Reads ... Session Consistency" by the
// violations with and without the token.
func replicaSessionsVerdict(without, with sessionRun) (lab.Verdict, string) {
	switch {
	case with.violations.Total() > 0:
		return lab.Refutes, fmt.Sprintf("with the session token %d guarantees were still broken in %d operations", with.violations.Total(), with.ops)
	case without.violations.Total() > 0:
		return lab.Agrees, fmt.Sprintf("without a token %d of %d operations broke a session guarantee (%d read-your-writes); with it none of %d did", without.violations.Total(), without.ops, without.violations.ReadYourWrites, with.ops)
	}
	return lab.Nuance, fmt.Sprintf("no operation of %d broke a guarantee even without a token: they held by luck, not by design", without.ops)
}
