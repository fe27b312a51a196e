// Package consensus implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Distributed Systems →
// Distributed Consensus" (Raft leader election, log replication, safety),
// "CAP Theorem" (a CP system) and "Consistency Models" (strong versus
// eventual reads), with "Security Considerations" (TLS in transit,
// authentication, role-based authorization) and "Fault Tolerance →
// Disaster Recovery" (backups, RPO, RTO, drills) for the cluster itself,
// on github.com/hashicorp/raft: what users of etcd or Consul's KV expect,
// embeddable in a Go program.
//
// The lines a user writes first — one node of a cluster, on disk, serving
// linearizable reads:
//
//	n, err := consensus.NewNode(consensus.Options{ID: "n1", Addr: "10.0.0.1:7000", DataDir: "/var/lib/kv/n1"})
//	err = n.Bootstrap(ctx) // once, on the first node; add the others with AddVoter
//	kv, err := n.Put(ctx, "config/mode", []byte("blue"))
//	got, err := n.Get(ctx, "config/mode")
//
// Runnable examples: ExampleNode, ExampleLocalCluster, ExampleNode_PutFenced
// and ExampleNode_Backup in this package's documentation, and the program examples/raftkv (a
// three-node cluster, one process per node).
//
// # Pieces
//
//   - [Node] owns one Raft member: durable storage (see Storage below), the
//     TCP transport (or any raft.Transport, such as the in-memory one for
//     tests), bootstrap, membership ([Node.AddVoter], [Node.AddNonVoter],
//     [Node.RemoveServer], [Node.Leave]), [Node.TransferLeadership] and
//     [Node.Close]. Timing
//     presets: [DefaultTiming] (hashicorp/raft's 1 s timeouts, failover in
//     seconds) and [LANTiming] (50 ms timeouts plus a failure detector,
//     [Timing.FastFailover], that makes the surviving followers campaign
//     one after another as soon as the leader falls silent, for failover
//     in tens of milliseconds); BenchmarkNode_Failover measures both.
//   - Leader election: [Node.IsLeader], [Node.Leader], [Node.Subscribe] (any
//     number of subscribers, each told the current [LeaderState] at once —
//     raft's LeaderCh serves only one) and [Node.WhileLeader], which runs
//     leader-only work under a context cancelled the moment leadership is
//     lost.
//   - The replicated store: [Node.Get], [Node.Put], [Node.Create],
//     [Node.CompareAndSwap], [Node.Delete], [Node.List], each key with a
//     growing [KV.Revision]. Reads are [Linearizable] by default (Raft's
//     read-index protocol: a no-op per term, then a quorum check per read,
//     so a deposed leader cannot serve stale data — the bug Jepsen found in
//     Consul in 2014); [Stale] reads are local, fast and available in a
//     minority partition, and may lag, unless [Node.WaitApplied] first
//     waits for a revision the client saw (read-your-writes on a
//     follower). Followers refuse leader-only
//     operations with a [*NotLeaderError] naming the leader; [Handler]
//     forwards them.
//   - Watches, as etcd's: [Node.Watch] follows a key or a prefix from a
//     revision (every change's Raft log index), delivering [Event]s (put,
//     delete) in order, with no gap and no duplicate, every event of a
//     revision together; [Watcher.Recv] reads the node's own applied
//     history, so followers serve watches, and a client that loses its
//     node resumes on another from [Watcher.Revision]. The history is
//     bounded ([Options.WatchHistory]) and compactable ([Node.Compact]),
//     kept in snapshots; a watch from a compacted revision fails with
//     [ErrCompacted] (re-list with [Node.Range], which returns the
//     revision to resume from), one from beyond the log with
//     [ErrFutureRevision]. The guide's "etcd: … watch notifications".
//   - Leases, as etcd's leases and Consul's sessions: [Node.GrantLease],
//     [Node.KeepAlive], [Node.RevokeLease]; keys written [WithLease]
//     are deleted when the lease ends. The leader decides expiry and
//     writes it through the log; a new leader first gives every lease a
//     full TTL (etcd's rule), so a leader change never expires a lease
//     early, and a dead lease lives at most TTL + one sweep interval past
//     the later of its last keep-alive and the current leader's arrival.
//     With watches they make the service registry of package
//     consensus/registry (the guide's "Service Discovery").
//   - Locks with fencing tokens: [Node.AcquireLock], [Node.RenewLock],
//     [Node.ReleaseLock], [Node.PutFenced] ([Lease]): the guide's
//     "Zookeeper/etcd: leader election, locks".
//   - [Handler]: a small JSON HTTP API so that separate processes form a
//     cluster (examples/raftkv), with leases, and watches as server-sent
//     events (resumable with the standard Last-Event-ID header; followers
//     serve them); errors are RFC 9457 problem bodies.
//   - Security, as etcd and Consul lock a cluster down: [Options.TLS] runs
//     the Raft transport over mutual TLS ([MutualTLS] loads it from PEM
//     files), so a node without a certificate of the cluster's CA can
//     neither join nor append; [HandlerOptions.Auth] ([NewAuth]) admits
//     callers by bearer token or client certificate, each to what its
//     [Role] allows ([RoleReadOnly], [RoleReadWrite] on a key prefix,
//     [RoleAdmin]), with 401 and 403 problems; a follower forwards with
//     the caller's identity. Without them the cluster is open to anyone
//     who reaches it.
//   - Disaster recovery, as `etcdctl snapshot save/restore`: [Node.Backup]
//     writes a consistent backup (a linearizable read at one index, with a
//     checksummed header, [BackupInfo]); [Node.Restore] loads it into a
//     new cluster, refusing a truncated, corrupted or other-cluster one
//     with [ErrInvalidBackup] before anything changes. A drill in the
//     tests measures the RPO and RTO (examples/raftkv's README has the
//     figures).
//   - [LocalCluster]: a whole cluster in one process for tests, benchmarks
//     and the lab, over the in-memory transport or loopback TCP, with
//     partitions (symmetric and one-way), slow links, crash/restart with
//     data, membership changes and a failover stopwatch.
//
// # Storage
//
// With [Options.DataDir] a node keeps its log and stable store (current
// term and vote) in one github.com/hashicorp/raft-boltdb/v2 file,
// DataDir/raft.db, fsynced on every write and read through raft's log
// cache, and its snapshots in raft's file snapshot store,
// DataDir/snapshots: the store Consul and Nomad run on. The package used
// hashicorp/raft-wal before, but raft-wal v0.4.0 marks its last segment
// sealed without writing the segment's index when Raft truncates the log
// tail (as it does when a leader cut off with unreplicated entries
// rejoins), and the node then fails to open its log at the next start
// (raft-wal's issue 31, fixed upstream after the release this module
// could build with). hashicorp/raft stays at v1.7.2: v1.8.0 requires a
// hashicorp/go-metrics without the compat package raft-boltdb/v2 imports.
// A data directory that still holds a raft-wal log (DataDir/wal) is
// refused with [ErrInvalidConfig]: starting without it would forget the
// node's term and vote. The tests crash and restart nodes on disk: after
// a truncated log tail, with every process killed mid-write, from a
// snapshot plus log, and under the linearizability nemesis followed by a
// full-cluster restart.
//
// # Trade-offs (from the guide)
//
// Raft gives leader uniqueness and log consistency: every acknowledged
// write survives any minority of failures, and reads can be linearizable.
// The price is latency (a write waits for a majority; a linearizable read
// for a quorum round trip) and availability: a minority partition refuses
// writes (CAP: consistency chosen over availability), and failover takes
// one to three heartbeat timeouts with raft's randomized timers alone,
// about 1.3–1.5 with the failure detector. Use it for small, critical state —
// configuration, locks, leader election, a service registry — as etcd,
// Consul and ZooKeeper are used; not as a bulk data store. Stale reads
// trade the guarantee back for latency where eventual consistency is
// acceptable.
//
// # Guarantees
//
// Writes acknowledged without error are committed and durable on a
// majority (with durable storage). A write that fails with
// [ErrIndeterminate] may or may not have been applied. Linearizable reads
// return the latest committed write. The test suite checks histories of
// concurrent put/get/compare-and-swap under partitions and crashes with
// github.com/anishathalye/porcupine.
package consensus
