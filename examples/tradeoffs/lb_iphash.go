package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/lb"
)

var lbIPHashExperiment = lab.Experiment{
	Name: "lb-iphash", Group: "lb", Section: lbSection,
	Title: "clients clustered in a few subnets: IP hash versus consistent hashing",
	Guide: "IP Hash: Session affinity, useful for stateful applications ... Cons: Uneven distribution if IPs are clustered",
	Run:   runLBIPHash,
}

// lbClients returns client IPs: clustered ones share a few /24 networks
// (corporate NAT, a mobile carrier), the rest are spread over the address
// space.
func lbClients(r *rand.Rand, n int, clusteredShare float64, subnets int) []string {
	out := make([]string, n)
	for i := range out {
		if r.Float64() < clusteredShare {
			s := r.IntN(subnets)
			out[i] = fmt.Sprintf("203.0.%d.%d", 100+s, 1+r.IntN(254))
		} else {
			out[i] = fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(222), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		}
	}
	return out
}

type lbHashPoint struct {
	algo, workload string
	maxOverMean    float64
	minShare       float64
	moved          float64 // share of clients that change backend when one of 10 leaves
}

var lbHashAlgos = []lbAlgo{lbRoundRobin, lbIPHash, lbRingHash, lbMaglev}

func lbHashRun(a lbAlgo, clients []string, workload string, seed *rand.Rand) (lbHashPoint, error) {
	const backends = 10
	bal, err := a.new(lbAddrs(backends), lb.Options{Rand: seed})
	if err != nil {
		return lbHashPoint{}, err
	}
	served := make([]int, backends)
	before := make([]string, len(clients))
	for i, ip := range clients {
		p, err := bal.Pick(lbBackgroundCx, lb.Request{Key: ip})
		if err != nil {
			return lbHashPoint{}, err
		}
		before[i] = p.Addr()
		served[int(p.Addr()[1]-'0')]++
		p.Done(lb.Result{})
	}
	shares, mom := lbShares(served)
	if err := bal.Remove("b9"); err != nil {
		return lbHashPoint{}, err
	}
	moved := 0
	for i, ip := range clients {
		p, err := bal.Pick(lbBackgroundCx, lb.Request{Key: ip})
		if err != nil {
			return lbHashPoint{}, err
		}
		if p.Addr() != before[i] && before[i] != "b9" {
			moved++
		}
		p.Done(lb.Result{})
	}
	return lbHashPoint{algo: a.name, workload: workload, maxOverMean: mom, minShare: slices.Min(shares), moved: float64(moved) / float64(len(clients))}, nil
}

func lbHashAll(env *lab.Env, n int) ([]lbHashPoint, error) {
	workloads := []struct {
		name    string
		share   float64
		subnets int
	}{
		{"uniform clients", 0, 1},
		{"60% of clients in 3 subnets", 0.6, 3},
		{"90% of clients in 5 subnets", 0.9, 5},
	}
	var out []lbHashPoint
	for wi, w := range workloads {
		clients := lbClients(env.Rand(uint64(30+wi)), n, w.share, w.subnets)
		for _, a := range lbHashAlgos {
			p, err := lbHashRun(a, clients, w.name, env.Rand(39))
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", a.name, w.name, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func runLBIPHash(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	n := env.Scale(100_000, 5_000)
	points, err := lbHashAll(env, n)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("%d clients, one request each, 10 backends", n),
		"workload", "algorithm", "max/mean load", "smallest share", "other clients remapped when 1 of 10 backends leaves")
	for _, p := range points {
		moved := pct(p.moved)
		if p.algo == lbRoundRobin.name {
			moved = "no affinity"
		}
		t.AddRow(p.workload, p.algo, fmt.Sprintf("%.2f", p.maxOverMean), pct(p.minShare), moved)
	}
	at := func(algo, w string) lbHashPoint {
		return find(points, func(p lbHashPoint) bool { return p.algo == algo && p.workload == w })
	}
	ip, ring, ipU := at(lbIPHash.name, "90% of clients in 5 subnets"), at(lbRingHash.name, "90% of clients in 5 subnets"), at(lbIPHash.name, "uniform clients")
	verdict, reason := lbIPHashVerdict(ipU, ip)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("IP hash on the /24 network (as nginx's ip_hash) is even for uniform clients (max/mean %.2f) but uneven if IPs are clustered: with 90%% of clients in 5 subnets the busiest backend takes %.1f× the mean and at least one gets %s of the traffic.", ipU.maxOverMean, ip.maxOverMean, pct(ip.minShare)),
		fmt.Sprintf("Hashing the full address on a consistent-hash ring keeps affinity per client and evens out clustered subnets (max/mean %.2f); only one client behind a NAT remains one unit of load, which no hash can split.", ring.maxOverMean),
		fmt.Sprintf("When one of 10 backends leaves, IP hash's modulo remaps %s of the other clients (their sessions are lost); the ring and Maglev remap about none beyond the leaver's own (ring %s, Maglev %s).",
			pct(at(lbIPHash.name, "uniform clients").moved), pct(at(lbRingHash.name, "uniform clients").moved), pct(at(lbMaglev.name, "uniform clients").moved)),
	}}, ctx.Err()
}

// lbIPHashVerdict judges "IP hash: uneven distribution if IPs are
// clustered": the busiest backend's load with clustered clients against
// uniform ones.
func lbIPHashVerdict(uniform, clustered lbHashPoint) (lab.Verdict, string) {
	return lab.Judge(clustered.maxOverMean > 1.5*uniform.maxOverMean,
		fmt.Sprintf("IP hash on /24 networks gives the busiest backend %.2f× the mean load with uniform clients and %.2f× with 90%% of clients in 5 subnets.", uniform.maxOverMean, clustered.maxOverMean),
		lab.Refutes,
		fmt.Sprintf("IP hash stays even with clustered clients: the busiest backend has %.2f× the mean load, against %.2f× with uniform clients.", clustered.maxOverMean, uniform.maxOverMean))
}
