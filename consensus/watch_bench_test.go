package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sysdesign-go/sysdesign/internal/sim"
)

// BenchmarkWatch_Delivery measures watch fan-out on a 3-node cluster: each
// iteration is one write on the leader, delivered to every watcher (spread
// over the three nodes); the metrics are the delivery latencies from the
// write's start to each watcher's Recv, over all watchers and writes.
func BenchmarkWatch_Delivery(b *testing.B) {
	for _, watchers := range []int{10, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			c := newCluster(b, ClusterOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			recs := make([]*sim.Recorder, watchers)
			var wg sync.WaitGroup
			nodes := c.Nodes()
			for i := range recs {
				recs[i] = sim.NewRecorder()
				w, err := nodes[i%len(nodes)].Watch("bench/", WatchOptions{Prefix: true})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					for {
						evs, err := w.Recv(ctx)
						if err != nil {
							return
						}
						now := time.Now()
						for _, e := range evs {
							if e.KV.Key == "bench/end" {
								return
							}
							ts, _ := strconv.ParseInt(string(e.KV.Value), 10, 64)
							recs[i].Record(now.Sub(time.Unix(0, ts)))
						}
					}
				})
			}
			put := func(key string, value []byte) {
				// A loaded machine may elect a new leader meanwhile.
				if err := retryOnLeader(ctx, c, func(n *Node) error { _, err := n.Put(ctx, key, value); return err }); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				put("bench/k", []byte(strconv.FormatInt(time.Now().UnixNano(), 10)))
			}
			put("bench/end", nil)
			wg.Wait()
			b.StopTimer()
			all := sim.NewRecorder()
			for _, r := range recs {
				all.Merge(r)
			}
			reportLatencies(b, all)
		})
	}
}

// BenchmarkNode_Lease measures the writes of a service registry on a
// 3-node cluster: a registration (a lease grant and a write attached to
// it: two commits) and a keep-alive, beside a plain Put in the same run.
// With several clients, ns/op is the inverse of the throughput.
func BenchmarkNode_Lease(b *testing.B) {
	c := newCluster(b, ClusterOptions{Node: Options{Timing: DefaultTiming()}})
	ctx := context.Background()
	var leases []LeaseID
	err := retryOnLeader(ctx, c, func(n *Node) error {
		for range 1024 {
			g, err := n.GrantLease(ctx, time.Hour)
			if err != nil {
				return err
			}
			leases = append(leases, g.ID)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	value := []byte(`{"service":"api","id":"a1","addr":"10.0.0.1:8080","status":"passing"}`)
	ops := map[string]func(n *Node, i int) error{
		"put": func(n *Node, i int) error { _, err := n.Put(ctx, fmt.Sprintf("k%d", i%1024), value); return err },
		"register": func(n *Node, i int) error {
			g, err := n.GrantLease(ctx, time.Hour)
			if err == nil {
				_, err = n.Put(ctx, fmt.Sprintf("registry/api/%d", i), value, WithLease(g.ID))
			}
			return err
		},
		"keepalive": func(n *Node, i int) error { _, err := n.KeepAlive(ctx, leases[i%len(leases)]); return err },
	}
	for _, clients := range []int{1, 16, 64} {
		for _, op := range []string{"put", "register", "keepalive"} {
			b.Run(fmt.Sprintf("op=%s/clients=%d", op, clients), func(b *testing.B) {
				runClients(b, clients, func(i int) error {
					return retryOnLeader(ctx, c, func(n *Node) error { return ops[op](n, i) })
				})
			})
		}
	}
}

// BenchmarkFSM_LeaseSweep measures the lease sweep with 100,000 leases (one
// key each) in the state machine: "scan" is the leader's check when none
// has expired (every sweep interval), "expire" revokes all of them through
// expiry entries of up to 1,000 leases, as the leader's sweep writes them
// (the per-node apply cost of an expiry storm); one iteration handles all.
func BenchmarkFSM_LeaseSweep(b *testing.B) {
	const leases = 100_000
	build := func() (*fsm, uint64) {
		f := newFSM()
		f.maxHistory = 2 * leases
		var index uint64
		apply := func(c command) applyResult {
			index++
			return f.Apply(&raft.Log{Index: index, Data: c.encode(), Type: raft.LogCommand}).(applyResult)
		}
		for i := range leases {
			g := apply(command{op: opLeaseGrant, ttl: int64(time.Second), now: 0}).grant
			apply(command{op: opPut, key: "registry/api/" + strconv.Itoa(i), value: []byte("10.0.0.1:8080"), lease: uint64(g.ID)})
		}
		return f, index
	}
	b.Run(fmt.Sprintf("leases=%d/op=scan", leases), func(b *testing.B) {
		f, _ := build()
		b.ReportAllocs()
		for b.Loop() {
			if ids := f.expired(0); len(ids) != 0 {
				b.Fatal("expired too early")
			}
		}
	})
	b.Run(fmt.Sprintf("leases=%d/op=expire", leases), func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			f, index := build()
			b.StartTimer()
			now := int64(2 * time.Second)
			for ids := range slices.Chunk(f.expired(now), maxSweep) {
				index++
				r := f.Apply(&raft.Log{Index: index, Data: (&command{op: opLeaseExpire, ids: ids, now: now}).encode(), Type: raft.LogCommand}).(applyResult)
				if r.err != nil {
					b.Fatal(r.err)
				}
			}
			if f.size() != 0 {
				b.Fatal(errors.New("keys left after the sweep"))
			}
		}
	})
}
