package consensus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sysdesign-go/sysdesign/internal/sim"
)

func reportLatencies(b *testing.B, lat *sim.Recorder) {
	b.ReportMetric(float64(lat.Percentile(50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat.Percentile(99).Nanoseconds()), "p99-ns")
}

// BenchmarkNode_Failover measures leader loss → new leader accepting
// writes; each iteration is one trial (run with -benchtime 20x or more).
// "lan-plain" is the LAN preset without its failure detector: raft's own
// randomized timers alone, the peer the detector is measured against.
func BenchmarkNode_Failover(b *testing.B) {
	plain := LANTiming()
	plain.FastFailover = false
	for _, preset := range []struct {
		name   string
		timing Timing
	}{{"lan", LANTiming()}, {"lan-plain", plain}, {"default", DefaultTiming()}} {
		for _, nodes := range []int{3, 5} {
			b.Run(fmt.Sprintf("timing=%s/nodes=%d", preset.name, nodes), func(b *testing.B) {
				c := newCluster(b, ClusterOptions{Nodes: nodes, Node: Options{Timing: preset.timing}})
				failoverTrials(b, c, preset.timing)
			})
		}
	}
}

// failoverTrials runs one failover per benchmark iteration on c and
// reports the p50 and p99 failover times and p99 as a multiple of the
// heartbeat timeout.
func failoverTrials(b *testing.B, c *LocalCluster, timing Timing) {
	b.Helper()
	lat := sim.NewRecorder()
	for b.Loop() {
		d, err := c.Failover(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		lat.Record(d)
	}
	b.ReportMetric(float64(lat.Percentile(50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat.Percentile(99).Milliseconds()), "p99-ms")
	b.ReportMetric(float64(lat.Percentile(99))/float64(timing.HeartbeatTimeout), "p99/heartbeat")
}

// BenchmarkNode_FailoverUnderLoad is BenchmarkNode_Failover with 8 clients
// writing throughout, so the leader dies with entries in flight: a follower
// may miss the last ones, and Raft lets only an up-to-date follower win.
func BenchmarkNode_FailoverUnderLoad(b *testing.B) {
	plain := LANTiming()
	plain.FastFailover = false
	for _, preset := range []struct {
		name   string
		timing Timing
	}{{"lan", LANTiming()}, {"lan-plain", plain}} {
		for _, nodes := range []int{3, 5} {
			b.Run(fmt.Sprintf("timing=%s/nodes=%d", preset.name, nodes), func(b *testing.B) {
				c := newCluster(b, ClusterOptions{Nodes: nodes, Node: Options{Timing: preset.timing}})
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for w := range 8 {
					wg.Go(func() {
						for i := 0; ctx.Err() == nil; i++ {
							n := c.Leader()
							if n == nil {
								time.Sleep(time.Millisecond)
								continue
							}
							wctx, wcancel := context.WithTimeout(ctx, 2*preset.timing.HeartbeatTimeout)
							_, _ = n.Put(wctx, fmt.Sprintf("w%d", w), []byte(strconv.Itoa(i)))
							wcancel()
						}
					})
				}
				defer wg.Wait()
				defer cancel()
				failoverTrials(b, c, preset.timing)
			})
		}
	}
}

// runClients splits b.N operations over clients goroutines and reports
// per-operation latency percentiles.
func runClients(b *testing.B, clients int, op func(i int) error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	// One recorder per client, made before the timer starts: no lock is
	// shared while timing and the recorders' memory is not counted.
	recs := make([]*sim.Recorder, clients)
	for i := range recs {
		recs[i] = sim.NewRecorder()
	}
	b.ResetTimer()
	for _, lat := range recs {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				start := time.Now()
				if err := op(int(i)); err != nil {
					b.Error(err)
					return
				}
				lat.Record(time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := sim.NewRecorder()
	for _, lat := range recs {
		all.Merge(lat)
	}
	reportLatencies(b, all)
}

// retryOnLeader runs op on the current leader, again after a leader change
// (a slow disk can delay heartbeats past the LAN timeouts).
func retryOnLeader(ctx context.Context, c *LocalCluster, op func(n *Node) error) error {
	for {
		n, err := c.WaitLeader(ctx)
		if err != nil {
			return err
		}
		err = op(n)
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrIndeterminate) ||
			errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost)) {
			return err
		}
	}
}

// BenchmarkNode_Put measures write throughput and latency through the
// replicated store, beside hashicorp/raft's own Apply of the same command
// on the same cluster, in the same run (the peer: the store's overhead is
// the difference), with raft's default timing. Each cluster serves every
// client count of its storage and size, so the two algorithms alternate on
// one cluster.
func BenchmarkNode_Put(b *testing.B) {
	value := []byte("0123456789abcdef0123456789abcdef")
	for _, storage := range []string{"inmem", "disk"} {
		for _, nodes := range []int{3, 5} {
			opts := ClusterOptions{Nodes: nodes, Node: Options{Timing: DefaultTiming()}}
			if storage == "disk" {
				opts.DataDir = b.TempDir()
			}
			c := newCluster(b, opts)
			ctx := context.Background()
			for _, clients := range []int{1, 16, 64} {
				for _, algo := range []string{"node-put", "raft-apply"} {
					if algo == "raft-apply" && (storage != "inmem" || nodes != 3) {
						continue
					}
					name := fmt.Sprintf("algo=%s/storage=%s/nodes=%d/clients=%d", algo, storage, nodes, clients)
					b.Run(name, func(b *testing.B) {
						b.ReportAllocs()
						if algo == "raft-apply" {
							runClients(b, clients, func(i int) error {
								cmd := command{op: opPut, key: fmt.Sprintf("k%d", i%1024), value: value}
								return retryOnLeader(ctx, c, func(n *Node) error {
									return n.raft.Apply(cmd.encode(), time.Second).Error()
								})
							})
							return
						}
						runClients(b, clients, func(i int) error {
							return retryOnLeader(ctx, c, func(n *Node) error {
								_, err := n.Put(ctx, fmt.Sprintf("k%d", i%1024), value)
								return err
							})
						})
					})
				}
			}
		}
	}
}

// BenchmarkNode_Read compares a linearizable read (a quorum round trip) with
// a stale local read.
func BenchmarkNode_Read(b *testing.B) {
	c := newCluster(b, ClusterOptions{})
	ctx := context.Background()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := leader.Put(ctx, "k", []byte("v")); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []ReadMode{Linearizable, Stale} {
		b.Run("mode="+mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			runClients(b, 8, func(int) error {
				_, err := leader.Read(ctx, "k", mode)
				return err
			})
		})
	}
}

// BenchmarkFSM_Apply measures the state machine alone: decoding a log entry
// and applying it, the part of a write that runs on every node.
func BenchmarkFSM_Apply(b *testing.B) {
	f := newFSM()
	data := (&command{op: opPut, key: "key", value: []byte("0123456789abcdef")}).encode()
	l := &raft.Log{Data: data, Type: raft.LogCommand}
	b.ReportAllocs()
	for b.Loop() {
		l.Index++
		f.Apply(l)
	}
}
