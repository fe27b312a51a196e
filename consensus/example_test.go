package consensus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sysdesign-go/sysdesign/consensus"
)

// Guide: "Distributed Systems → Distributed Consensus" (Raft: leader
// election, log replication).
// A single-node cluster: bootstrap, wait for leadership, then use the
// replicated store. Production nodes use Addr and DataDir instead of an
// in-memory transport and storage.
func ExampleNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, transport := raft.NewInmemTransport("node1")
	n, err := consensus.NewNode(consensus.Options{ID: "node1", Transport: transport, InMemory: true, Timing: consensus.LANTiming()})
	if err != nil {
		panic(err)
	}
	defer n.Close(context.Background())
	if err := n.Bootstrap(ctx); err != nil {
		panic(err)
	}
	for st := range n.Subscribe(ctx) { // the current state first, then changes
		if st.IsLeader {
			break
		}
	}

	put, _ := n.Put(ctx, "config/mode", []byte("blue"))
	_, err = n.CompareAndSwap(ctx, "config/mode", []byte("green"), []byte("red"))
	fmt.Println("swap from green:", errors.Is(err, consensus.ErrCompareFailed))
	cas, _ := n.CompareAndSwap(ctx, "config/mode", []byte("blue"), []byte("red"))
	got, _ := n.Get(ctx, "config/mode") // linearizable
	fmt.Println(string(got.Value), "version", got.Version, "revision grew:", cas.Revision > put.Revision)
	_, err = n.Get(ctx, "missing")
	fmt.Println(errors.Is(err, consensus.ErrKeyNotFound))
	// Output:
	// swap from green: true
	// red version 2 revision grew: true
	// true
}

// Guide: "Distributed Systems → Distributed Consensus" (distributed locks).
// A lock with a fencing token: once the lease is taken over, the old
// holder's writes are rejected.
func ExampleNode_PutFenced() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The leader's clock, moved by hand below to show alice stalling.
	var stalled atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(stalled.Load())) }
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1, Node: consensus.Options{Now: now}})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	n := c.Leader()

	alice, _ := n.AcquireLock(ctx, "report", "alice", 20*time.Millisecond)
	_, err = n.AcquireLock(ctx, "report", "bob", time.Minute)
	fmt.Println("bob while alice holds it:", errors.Is(err, consensus.ErrLockHeld))
	stalled.Store(int64(30 * time.Millisecond)) // alice stalls past her TTL
	bob, _ := n.AcquireLock(ctx, "report", "bob", time.Minute)
	fmt.Println("bob's token is newer:", bob.Token > alice.Token)
	_, _ = n.PutFenced(ctx, bob, "report/out", []byte("bob"))
	_, err = n.PutFenced(ctx, alice, "report/out", []byte("alice"))
	fmt.Println("alice's late write:", errors.Is(err, consensus.ErrLeaseLost))
	kv, _ := n.Get(ctx, "report/out")
	fmt.Println("stored:", string(kv.Value))
	// Output:
	// bob while alice holds it: true
	// bob's token is newer: true
	// alice's late write: true
	// stored: bob
}

// Guide: "Distributed Systems → Distributed Consensus" (network partitions,
// minority partitions); "Distributed Systems → CAP Theorem" (CP systems).
// Partition a 3-node cluster: the majority elects a new leader, the old
// leader, alone in the minority, cannot commit.
func ExampleLocalCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 3})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	old, _ := c.WaitLeader(ctx)
	c.Isolate(old.ID())

	leader, _ := c.WaitLeader(ctx, old.ID())
	_, err = leader.Put(ctx, "k", []byte("majority"))
	fmt.Println("majority write:", err)
	_, err = old.Put(ctx, "k", []byte("minority"))
	fmt.Println("minority write refused:", err != nil)
	// Output:
	// majority write: <nil>
	// minority write refused: true
}

// Guide: "Distributed Systems → Distributed Consensus" (etcd: watch
// notifications, service discovery).
// A watch on a prefix sees every change in order, including the deletion
// of a key whose lease was revoked; a client resumes from
// Watcher.Revision on any node.
func ExampleNode_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	n := c.Leader()

	_, rev, _ := n.Range(ctx, "svc/", consensus.Linearizable) // list, then follow
	w, _ := n.Watch("svc/", consensus.WatchOptions{Prefix: true, From: rev + 1})
	lease, _ := n.GrantLease(ctx, time.Minute)
	_, _ = n.Put(ctx, "svc/api/a", []byte("10.0.0.1:80"), consensus.WithLease(lease.ID))
	_, _ = n.Put(ctx, "svc/api/b", []byte("10.0.0.2:80"), consensus.WithLease(lease.ID))
	_ = n.RevokeLease(ctx, lease.ID) // as its expiry would
	for seen := 0; seen < 4; {
		evs, _ := w.Recv(ctx)
		for _, e := range evs {
			if e.Type == consensus.EventPut {
				fmt.Println(e.Type, e.KV.Key, string(e.KV.Value))
			} else {
				fmt.Println(e.Type, e.KV.Key)
			}
			seen++
		}
	}
	// Output:
	// put svc/api/a 10.0.0.1:80
	// put svc/api/b 10.0.0.2:80
	// delete svc/api/a
	// delete svc/api/b
}

// Guide: "Fault Tolerance → Disaster Recovery" (backup and restore).
// A backup of one cluster restored into a new one, as `etcdctl snapshot
// save` and `restore`; a damaged backup is refused before anything
// changes.
func ExampleNode_Backup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1})
	if err != nil {
		panic(err)
	}
	defer old.Close(context.Background())
	_, _ = old.Leader().Put(ctx, "config/mode", []byte("blue"))
	var backup bytes.Buffer
	info, err := old.Leader().Backup(ctx, &backup)
	if err != nil {
		panic(err)
	}
	fmt.Println("backup holds the write:", info.Index >= 1, info.ClusterID == old.Leader().ClusterID())

	fresh, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1})
	if err != nil {
		panic(err)
	}
	defer fresh.Close(context.Background())
	damaged := backup.Bytes()[:backup.Len()-1]
	_, err = fresh.Leader().Restore(ctx, bytes.NewReader(damaged))
	fmt.Println("truncated backup refused:", errors.Is(err, consensus.ErrInvalidBackup))
	if _, err := fresh.Leader().Restore(ctx, &backup); err != nil {
		panic(err)
	}
	kv, _ := fresh.Leader().Get(ctx, "config/mode")
	fmt.Println("restored:", string(kv.Value))
	// Output:
	// backup holds the write: true true
	// truncated backup refused: true
	// restored: blue
}
