package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

// replicaCluster is k in-memory nodes n1…nk of shard/replica on one
// in-process network.
type replicaCluster struct {
	net   *replica.Network
	ring  *shard.Ring
	nodes []*replica.Node
	names []string
	coord []*replica.Coordinator
}

func newReplicaCluster(k int) (*replicaCluster, error) {
	rc := &replicaCluster{net: new(replica.Network)}
	for i := range k {
		rc.names = append(rc.names, fmt.Sprintf("n%d", i+1))
	}
	ring, err := shard.NewRing(shard.NodesNamed(rc.names...), shard.RingOptions{})
	if err != nil {
		return nil, err
	}
	rc.ring = ring
	for _, name := range rc.names {
		n, err := replica.NewNode(replica.NodeConfig{Name: name, Placement: ring, N: k, Transport: rc.net.Endpoint(name)})
		if err != nil {
			return nil, err
		}
		rc.nodes = append(rc.nodes, n)
		rc.net.Register(name, n)
	}
	return rc, nil
}

// coordinator returns a coordinator at endpoint name; close closes them all.
func (rc *replicaCluster) coordinator(name string, cfg replica.Config) (*replica.Coordinator, error) {
	cfg.Placement, cfg.Transport = rc.ring, rc.net.Endpoint(name)
	c, err := replica.NewCoordinator(cfg)
	if err == nil {
		rc.coord = append(rc.coord, c)
	}
	return c, err
}

func (rc *replicaCluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range rc.coord {
		_ = c.Close(ctx)
	}
}

// antiEntropyAll runs anti-entropy between every pair of nodes until a
// whole pass repairs nothing, and returns the number of passes.
func (rc *replicaCluster) antiEntropyAll(ctx context.Context) (passes int, err error) {
	for passes = 1; passes <= 10; passes++ {
		repaired := 0
		for i, a := range rc.nodes {
			for _, b := range rc.names[i+1:] {
				st, err := a.AntiEntropy(ctx, b)
				if err != nil {
					return passes, err
				}
				repaired += st.Keys
			}
		}
		if repaired == 0 {
			return passes, nil
		}
	}
	return passes, fmt.Errorf("anti-entropy did not converge in 10 passes")
}

// expLatency returns a one-way delay function: exponential with the given
// mean, from a seeded stream shared under a lock.
func expLatency(rng *rand.Rand, mean time.Duration) func(from, to string) time.Duration {
	var mu sync.Mutex
	return func(string, string) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.ExpFloat64() * float64(mean))
	}
}
