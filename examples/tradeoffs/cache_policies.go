package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

var cachePoliciesExperiment = lab.Experiment{
	Name: "cache-policies", Group: "cache", Section: cacheSection,
	Title: "hit ratio of LRU, LFU, TTL-only and W-TinyLFU versus cache size on Zipf, scans and a shifting working set",
	Guide: "Cache Invalidation Strategies: TTL (Time To Live): Automatic expiration; LRU (Least Recently Used): Evict least used items; LFU (Least Frequently Used): Evict least frequent items",
	Run:   runCachePolicies,
}

// cacheWorkload produces the key stream of one hit-ratio run.
type cacheWorkload struct {
	name string
	// oracle, when set, is the hit ratio of a cache that always holds the
	// size most popular keys (the best any policy can do on a static,
	// independent-reference workload).
	oracle func(size int) float64
	next   func() uint64
}

func cacheWorkloads(env *lab.Env, keys uint64, requests, scanLen int, stream uint64) ([]cacheWorkload, error) {
	var out []cacheWorkload
	for i, s := range []float64{0.8, 1.0, 1.2} {
		z, err := sim.NewZipf(env.Rand(stream+uint64(i)), s, keys)
		if err != nil {
			return nil, err
		}
		out = append(out, cacheWorkload{
			name: fmt.Sprintf("zipf s=%.1f", s),
			oracle: func(size int) float64 {
				p := 0.0
				for k := range uint64(size) {
					p += z.Prob(k)
				}
				return p
			},
			next: z.Next,
		})
	}
	// Zipf(1.0) with a scan of fresh keys (as many as the largest cache
	// holds) after every 10 such lengths of requests: the one-hit wonders
	// that flush LRU.
	zs, err := sim.NewZipf(env.Rand(stream+10), 1.0, keys)
	if err != nil {
		return nil, err
	}
	n, fresh, period := 0, keys, 10*scanLen
	out = append(out, cacheWorkload{name: "zipf 1.0 + scans", next: func() uint64 {
		n++
		if p := n % (period + scanLen); p >= period {
			fresh++
			return fresh
		}
		return zs.Next()
	}})
	// The popular keys move: every fifth of the run, the ranking shifts to
	// keys that were cold.
	zw, err := sim.NewZipf(env.Rand(stream+11), 1.0, keys)
	if err != nil {
		return nil, err
	}
	phase, m := requests/5, 0
	out = append(out, cacheWorkload{name: "shifting zipf 1.0", next: func() uint64 {
		shift := uint64(m/phase) * (keys / 3)
		m++
		return (zw.Next() + shift) % keys
	}})
	return out, nil
}

type policyPoint struct {
	workload string
	policy   cache.Policy
	size     int
	hitRatio float64
}

// cachePolicyRequests is the number of lookups of each hit-ratio run.
func cachePolicyRequests(env *lab.Env) int { return env.Scale(200_000, 10_000) }

func cachePolicyRun(ctx context.Context, env *lab.Env) ([]policyPoint, []int, map[string]func(int) float64, error) {
	keys := uint64(env.Scale(50_000, 5_000))
	requests := cachePolicyRequests(env)
	sizes := []int{int(keys / 100), int(keys / 20)}
	if !env.Quick {
		sizes = append([]int{int(keys / 1000)}, sizes...)
	}
	oracles := map[string]func(int) float64{}
	var out []policyPoint
	bar := env.Progress(int64(5*len(sizes)*len(cache.Policies)), "cache-policies")
	scanLen := sizes[len(sizes)-1]
	defer bar.Done()
	for _, size := range sizes {
		for _, p := range cache.Policies {
			// The same key stream for every policy at every size.
			wls, err := cacheWorkloads(env, keys, requests, scanLen, 0)
			if err != nil {
				return nil, nil, nil, err
			}
			for _, wl := range wls {
				if err := ctx.Err(); err != nil {
					return nil, nil, nil, err
				}
				if wl.oracle != nil {
					oracles[wl.name] = wl.oracle
				}
				m, err := cache.NewMemory(size, cache.MemoryOptions[uint64, struct{}]{Policy: p, Shards: 1, Hash: mix64})
				if err != nil {
					return nil, nil, nil, err
				}
				hits := 0
				for range requests {
					k := wl.next()
					if _, ok := m.Get(k); ok {
						hits++
					} else if err := m.Set(k, struct{}{}); err != nil {
						return nil, nil, nil, err
					}
				}
				out = append(out, policyPoint{wl.name, p, size, float64(hits) / float64(requests)})
				bar.Add(1)
			}
		}
	}
	return out, sizes, oracles, nil
}

func runCachePolicies(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	points, sizes, oracles, err := cachePolicyRun(ctx, env)
	if err != nil {
		return nil, err
	}
	phase := cachePolicyRequests(env) / 5 // per phase of the shifting workload
	res := &lab.Result{}
	byWL := map[string][]policyPoint{}
	var order []string
	for _, p := range points {
		if _, ok := byWL[p.workload]; !ok {
			order = append(order, p.workload)
		}
		byWL[p.workload] = append(byWL[p.workload], p)
	}
	cols := []string{"workload", "cache size"}
	for _, p := range cache.Policies {
		cols = append(cols, p.String())
	}
	cols = append(cols, "top-N oracle", "tinylfu − best")
	t := lab.NewTable("Hit ratio (%) by policy and cache size", cols...)
	worstGap, shiftGap, scanLead := 0.0, 0.0, 100.0
	// LFU minus LRU on the shifting working set, over the sizes.
	shiftLFULo, shiftLFUHi := 100.0, -100.0
	for _, wl := range order {
		for _, size := range sizes {
			row := []any{wl, size}
			best, tiny, lru, lfu := 0.0, 0.0, 0.0, 0.0
			for _, pol := range cache.Policies {
				for _, p := range byWL[wl] {
					if p.size == size && p.policy == pol {
						row = append(row, fmt.Sprintf("%.2f", 100*p.hitRatio))
						best = max(best, p.hitRatio)
						switch pol {
						case cache.TinyLFU:
							tiny = p.hitRatio
						case cache.LRU:
							lru = p.hitRatio
						case cache.LFU:
							lfu = p.hitRatio
						}
					}
				}
			}
			if o := oracles[wl]; o != nil {
				row = append(row, fmt.Sprintf("%.2f", 100*o(size)))
			} else {
				row = append(row, "—")
			}
			row = append(row, fmt.Sprintf("%.2f", 100*(tiny-best)))
			t.AddRow(row...)
			if wl == "shifting zipf 1.0" {
				shiftGap = max(shiftGap, 100*(best-tiny))
				shiftLFULo, shiftLFUHi = min(shiftLFULo, 100*(lfu-lru)), max(shiftLFUHi, 100*(lfu-lru))
			} else {
				worstGap = max(worstGap, 100*(best-tiny))
			}
			if wl == "zipf 1.0 + scans" {
				scanLead = min(scanLead, 100*(tiny-lru))
			}
		}
	}
	res.Tables = append(res.Tables, t)
	for _, wl := range order {
		c := &lab.Chart{Title: "Hit ratio vs cache size: " + wl, XLabel: "cache size (entries)", YLabel: "hit ratio (%)"}
		for _, pol := range cache.Policies {
			s := lab.Series{Name: pol.String()}
			for _, p := range byWL[wl] {
				if p.policy == pol {
					s.X, s.Y = append(s.X, float64(p.size)), append(s.Y, 100*p.hitRatio)
				}
			}
			c.Series = append(c.Series, s)
		}
		res.Charts = append(res.Charts, c)
	}
	res.Verdict, res.Reason = cachePoliciesVerdict(points)
	res.Notes = append(res.Notes,
		fmt.Sprintf("W-TinyLFU is at most %.2f points below the best policy on the static Zipf and scan workloads (the bar set for it: within 2 points), and %.1f points or more ahead of LRU on the workload with scans: the guide's LRU evicts \"least used\" only in the recency sense, so one scan of cold keys flushes its hot set.", worstGap, scanLead),
		fmt.Sprintf("On the shifting working set (the whole hot set moves to cold keys every fifth of the run, %d lookups) W-TinyLFU trails the best policy by up to %.2f points: new keys must out-count the old hot keys' sketch counts before they are admitted, and the old hot set holds the protected segment until the sketch ages (every 10×capacity lookups) and the hill climber, which samples as many lookups per step, resizes the window. %s Experiment cache-vs-otter sets it beside otter, which adapts the same way.", phase, shiftGap, map[bool]string{true: "Here that exceeds 2 points: the bar is not met on this workload.", false: "That is within the 2-point bar."}[shiftGap > 2]),
		"On static Zipf, LFU (with aging) and W-TinyLFU approach the top-N oracle (a cache holding exactly the N most popular keys, the ceiling for any policy that cannot see the future); LRU trails, most at small sizes; TTL-only (FIFO by expiry) ignores popularity and is the floor. "+shiftNote(shiftLFULo, shiftLFUHi),
		"Published figures for comparison: Caffeine's and otter's simulators report W-TinyLFU at or near the best of LRU, ARC and LIRS on database, search and scan-heavy traces, well ahead of LRU on scans. Those traces are not used here, so the numbers agree in ordering and size of the scan effect, not digit for digit.",
	)
	return res, nil
}

// shiftNote describes LFU against LRU on the shifting working set, given
// the range of LFU's lead over the cache sizes (in points, negative when
// it trails).
func shiftNote(lo, hi float64) string {
	const base = "On the shifting working set recency matters and LRU closes its gap to W-TinyLFU as the cache grows"
	switch {
	case lo >= 0:
		return fmt.Sprintf("%s, yet LFU stays ahead of LRU (by %.2f to %.2f points): its aging (L rises with every eviction), with the cap on the hits an entry banks between two folds, retires the old hot set within a phase.", base, lo, hi)
	case hi <= 0:
		return fmt.Sprintf("%s and passes LFU (by %.2f to %.2f points), whose old counts slow it down — the aging in this LFU limits, but does not remove, that cost.", base, -hi, -lo)
	}
	return fmt.Sprintf("%s; LFU's old counts cost it at some sizes and not others (LFU minus LRU: %.2f to %.2f points).", base, lo, hi)
}

// cachePoliciesVerdict judges the guide's list of eviction policies, which
// sets TTL, LRU and LFU side by side as if any would do: that holds only if
// one policy wins on every workload and the others trail it by little.
func cachePoliciesVerdict(points []policyPoint) (lab.Verdict, string) {
	largest := 0
	for _, p := range points {
		largest = max(largest, p.size)
	}
	var order []string
	best, worst := map[string]policyPoint{}, map[string]policyPoint{}
	for _, p := range points {
		if p.size != largest {
			continue
		}
		b, seen := best[p.workload]
		if !seen {
			order = append(order, p.workload)
			worst[p.workload] = p
		}
		if !seen || p.hitRatio > b.hitRatio {
			best[p.workload] = p
		}
		if p.hitRatio < worst[p.workload].hitRatio {
			worst[p.workload] = p
		}
	}
	winners := map[cache.Policy]bool{}
	var wins []string
	spread, widest := 0.0, ""
	for _, wl := range order {
		winners[best[wl].policy] = true
		wins = append(wins, fmt.Sprintf("%s on %s", best[wl].policy, wl))
		if gap := 100 * (best[wl].hitRatio - worst[wl].hitRatio); gap > spread {
			spread, widest = gap, fmt.Sprintf("%s trails %s by %.1f points on %s", worst[wl].policy, best[wl].policy, gap, wl)
		}
	}
	if len(winners) > 1 || spread > 5 {
		return lab.Nuance, fmt.Sprintf("The guide lists the policies side by side, but they are not interchangeable: at %d entries the best is %s, and %s.", largest, strings.Join(wins, ", "), widest)
	}
	return lab.Agrees, fmt.Sprintf("At %d entries one policy wins on every workload (%s) and the others trail it by at most %.1f points: here any of them would do.", largest, strings.Join(wins, ", "), spread)
}
