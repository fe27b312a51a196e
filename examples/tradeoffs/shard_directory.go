package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/shard"
)

var shardDirectoryExperiment = lab.Experiment{
	Name:      "shard-directory",
	Group:     "shard",
	Title:     "directory lookup cost and outage exposure, with and without a cached directory",
	Section:   shardSection,
	Guide:     "Directory-based: Lookup table for routing ... Pros: Flexible routing, easy to rebalance; Cons: Single point of failure, lookup overhead",
	WallClock: true,
	Run:       runShardDirectory,
}

// errDirectoryDown is what the directory service answers during its outage.
var errDirectoryDown = errors.New("directory unavailable")

// remoteDirectory is a directory service reached over the network: the
// library's real Directory behind a real wait drawn from a round-trip
// distribution, with an outage switch.
type remoteDirectory struct {
	dir   *shard.Directory
	rtt   *lockedDist
	meter *waitMeter
	down  atomic.Bool
	calls atomic.Int64
}

func (d *remoteDirectory) LookupShard(ctx context.Context, key string) (string, error) {
	d.calls.Add(1)
	if err := shardWait(ctx, d.rtt.sample(), d.meter); err != nil {
		return "", err
	}
	if d.down.Load() {
		return "", errDirectoryDown
	}
	return d.dir.LookupShard(ctx, key)
}

// directoryRow is one configuration of the directory experiment.
type directoryRow struct {
	name                string
	lookups             int64
	lat                 sim.Summary
	hitRate             float64 // -1: no directory service
	callsPerLookup      float64 // directory-service calls per lookup
	failedDuringOutage  float64
	failedOutsideOutage float64
}

type directoryConfig struct {
	name       string
	remote     bool // false: the in-process table, no service
	cacheKeys  int  // 0: no cache
	serveStale bool
}

// The directory experiment's service round trip (log-normal, median
// 500µs), cache TTL, and an outage longer than the TTL, so that cached
// entries expire while the service is down.
const (
	directoryRTT     = 500 * time.Microsecond
	directoryTTL     = 100 * time.Millisecond
	directoryOutage  = 150 * time.Millisecond
	directoryWorkers = 8
)

// shardDirectory routes tenant lookups (Zipf s=1 over tenants) through the
// real Directory — in process, behind a remote service with real waits,
// and behind the real CachedDirectory — from directoryWorkers concurrent
// callers per configuration, every configuration at once: at least
// lookups/2 lookups, then (with a service) directoryOutage of service
// outage, then at least lookups/2 more.
func shardDirectory(ctx context.Context, env *lab.Env, tenants, lookups int) ([]directoryRow, *waitMeter, error) {
	nodes := shardNodes(16)
	fallback, err := shard.NewJump(nodes)
	if err != nil {
		return nil, nil, err
	}
	// Large tenants pinned to their own shards: what directories are for.
	entries := map[string]string{"tenant:0": "s015", "tenant:1": "s014"}
	dir, err := shard.NewDirectory(nodes, entries, shard.DirectoryOptions{Fallback: fallback})
	if err != nil {
		return nil, nil, err
	}
	meter := &waitMeter{}
	index := map[string]int{}
	for i, n := range nodes {
		index[n.Name] = i
	}
	configs := []directoryConfig{
		{"in-process table (Directory.Lookup)", false, 0, false},
		{"remote directory, no cache", true, 0, false},
		{fmt.Sprintf("remote + cache of %d keys (1%%)", tenants/100), true, tenants / 100, false},
		{fmt.Sprintf("remote + cache of %d keys (10%%)", tenants/10), true, tenants / 10, false},
		{fmt.Sprintf("remote + cache of %d keys (10%%), serve stale", tenants/10), true, tenants / 10, true},
	}
	// Every configuration runs at the same time, phase by phase, so that
	// their latencies are measured under the same load and the outage is
	// the same window for all.
	type run struct {
		c           directoryConfig
		src         *remoteDirectory
		cache       *shard.CachedDirectory
		lookup      func(key string) (int, error)
		zipfs       []*sim.Zipf
		rec         *sim.Recorder
		ran, failed [3]int64
	}
	runs := make([]*run, len(configs))
	for ci, c := range configs {
		rtt, err := sim.NewLogNormal(env.Rand(40+uint64(ci)), directoryRTT, 0.5)
		if err != nil {
			return nil, nil, err
		}
		r := &run{c: c, src: &remoteDirectory{dir: dir, rtt: &lockedDist{d: rtt}, meter: meter}, rec: sim.NewRecorder()}
		switch {
		case !c.remote:
			r.lookup = dir.Lookup
		case c.cacheKeys > 0:
			r.cache, err = shard.NewCachedDirectory(r.src, nodes, shard.CachedDirectoryOptions{Size: c.cacheKeys, TTL: directoryTTL, ServeStale: c.serveStale})
			if err != nil {
				return nil, nil, err
			}
			r.lookup = func(key string) (int, error) { return r.cache.Lookup(ctx, key) }
		default:
			r.lookup = func(key string) (int, error) {
				name, err := r.src.LookupShard(ctx, key)
				if err != nil {
					return -1, err
				}
				return index[name], nil
			}
		}
		// One Zipf stream per caller, the same for every configuration.
		r.zipfs = make([]*sim.Zipf, directoryWorkers)
		for w := range r.zipfs {
			if r.zipfs[w], err = sim.NewZipf(env.Rand(50+uint64(w)), 1.0, uint64(tenants)); err != nil {
				return nil, nil, err
			}
		}
		runs[ci] = r
	}
	// phase runs phase i of every configuration concurrently. In the two
	// counted phases the configurations with a service go on until each
	// has done its share, so that all enter the outage together, their
	// cached entries as fresh as the last lookups left them.
	phase := func(i int) error {
		n := int64(lookups / 2)
		if i == 2 {
			n = int64(lookups - lookups/2)
		}
		var pending atomic.Int64
		for _, r := range runs {
			if r.c.remote {
				pending.Add(1)
			}
		}
		errs := make([]error, len(runs))
		var wg sync.WaitGroup
		until := time.Now().Add(directoryOutage)
		for ri, r := range runs {
			var stop func(claimed int64) bool
			switch {
			case i == 1 && !r.c.remote: // the in-process table has no service to lose
				continue
			case i == 1:
				stop = func(int64) bool { return !time.Now().Before(until) }
			case !r.c.remote: // in process: no need to wait for the others
				stop = func(c int64) bool { return c > n }
			default:
				stop = func(c int64) bool {
					if c == n {
						pending.Add(-1)
					}
					return c > n && pending.Load() == 0
				}
			}
			wg.Go(func() {
				r.src.down.Store(i == 1)
				r.ran[i], r.failed[i], errs[ri] = directoryPhase(ctx, r.zipfs, r.lookup, r.rec, stop)
				r.src.down.Store(false)
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	for i := range 3 {
		if err := phase(i); err != nil {
			return nil, nil, err
		}
	}
	var rows []directoryRow
	for _, r := range runs {
		total := r.ran[0] + r.ran[1] + r.ran[2]
		row := directoryRow{
			name: r.c.name, lookups: total, lat: r.rec.Summary(), hitRate: -1,
			callsPerLookup:      float64(r.src.calls.Load()) / float64(total),
			failedDuringOutage:  float64(r.failed[1]) / float64(max(r.ran[1], 1)),
			failedOutsideOutage: float64(r.failed[0]+r.failed[2]) / float64(r.ran[0]+r.ran[2]),
		}
		if r.c.remote {
			row.hitRate = 0
		}
		if r.cache != nil {
			st := r.cache.Stats()
			row.hitRate = float64(st.Hits) / float64(st.Hits+st.Misses)
		}
		rows = append(rows, row)
	}
	return rows, meter, nil
}

// directoryPhase runs one caller per Zipf stream, each looking up tenants
// one after another until stop, called with the number of lookups claimed
// so far (this one included), says to stop. It records every lookup's
// latency in rec and returns the lookups run and those that failed
// because the directory was down.
func directoryPhase(ctx context.Context, zipfs []*sim.Zipf, lookup func(string) (int, error), rec *sim.Recorder, stop func(claimed int64) bool) (ran, failed int64, err error) {
	var claimed, ranN, failedN atomic.Int64
	errs := make([]error, len(zipfs))
	var wg sync.WaitGroup
	for w, z := range zipfs {
		wg.Go(func() {
			for ctx.Err() == nil {
				if stop(claimed.Add(1)) {
					return
				}
				key := "tenant:" + strconv.FormatUint(z.Next(), 10)
				start := time.Now()
				_, err := lookup(key)
				rec.Record(time.Since(start))
				ranN.Add(1)
				if err != nil {
					if !errors.Is(err, errDirectoryDown) {
						errs[w] = err
						return
					}
					failedN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return ranN.Load(), failedN.Load(), errors.Join(errs...)
}

func runShardDirectory(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	tenants := env.Scale(10_000, 2_000)
	rows, meter, err := shardDirectory(ctx, env, tenants, env.Scale(12_000, 3_000))
	if err != nil {
		return nil, err
	}
	res := &lab.Result{}
	t := lab.NewTable(fmt.Sprintf("Routing lookups over %d tenants (Zipf s=1) from %d concurrent callers per configuration, every configuration at once (so all are measured under the same load): the library's Directory in process, behind a directory service with real round trips (log-normal, median %v), and behind CachedDirectory (TTL %v); the service is down for %v mid-run. Wall-clock.",
		tenants, directoryWorkers, directoryRTT, directoryTTL, directoryOutage),
		"configuration", "lookups", "cache hit rate", "mean lookup", "p50", "p99", "directory calls per lookup", "failed during outage", "failed otherwise")
	for _, r := range rows {
		hit, outage := "—", "— (no service)"
		if r.hitRate >= 0 {
			hit, outage = pct(r.hitRate), pct(r.failedDuringOutage)
		}
		t.AddRow(r.name, r.lookups, hit, r.lat.Mean, r.lat.P50, r.lat.P99,
			fmt.Sprintf("%.3f", r.callsPerLookup), outage, pct(r.failedOutsideOutage))
	}
	res.Tables = append(res.Tables, t)
	local, no, small, big, stale := rows[0], rows[1], rows[2], rows[3], rows[4]
	res.Verdict, res.Reason = shardDirectoryVerdict(local, no, stale)
	res.Notes = append(res.Notes,
		fmt.Sprintf("Lookup overhead: the table itself answers in %v at the median in process, but kept in a separate service every lookup pays a round trip (median %v, mean %v) and every request becomes a directory call. Caching 1%% of keys answers %s of lookups in process (mean %v); caching 10%% answers %s (mean %v) and cuts directory calls to %.2f per lookup.",
			lab.Format(local.lat.P50), lab.Format(no.lat.P50), lab.Format(no.lat.Mean), pct(small.hitRate), lab.Format(small.lat.Mean), pct(big.hitRate), lab.Format(big.lat.Mean), big.callsPerLookup),
		fmt.Sprintf("Single point of failure: while the service is down, %s of uncached lookups fail; a cache alone still fails %s (misses, and entries whose TTL ran out during the outage), and serving stale entries brings it to %s — only keys not in the cache (never seen, or evicted) fail, at the price of routing a recently moved key to its old shard (which a migration's double-read tolerates).",
			pct(no.failedDuringOutage), pct(big.failedDuringOutage), pct(stale.failedDuringOutage)),
		fmt.Sprintf("Measured in real time with this library's Directory and CachedDirectory; only the service's network round trip is injected, as a real wait drawn from the simulation kit's log-normal distribution, so the numbers vary between runs and with the machine's load. The runtime's timers woke those waits %v late on average here, which the latencies include.", lab.Format(meter.late())),
	)
	return res, nil
}

// shardDirectoryVerdict judges "directory-based ... cons: single point of
// failure, lookup overhead" by the remote directory without a cache.
func shardDirectoryVerdict(local, remote, stale directoryRow) (lab.Verdict, string) {
	numbers := fmt.Sprintf("the table answers in %v at the median in process and %v behind a directory service, and while the service is down %s of uncached lookups fail (%s with a cache that serves stale entries)",
		lab.Format(local.lat.P50), lab.Format(remote.lat.P50), pct(remote.failedDuringOutage), pct(stale.failedDuringOutage))
	return lab.Judge(remote.lat.P50 > 10*local.lat.P50 && remote.failedDuringOutage > 0.99,
		"Lookup overhead and single point of failure both hold: "+numbers+".", lab.Nuance, "Not both hold: "+numbers+".")
}
