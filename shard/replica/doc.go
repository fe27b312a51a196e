// Package replica implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Distributed Systems → CAP Theorem" (the AP side: a store that stays
// available on both sides of a partition and returns stale or conflicting
// data instead) and "Distributed Systems → Consistency Models" (quorum
// writes, eventual consistency, read-your-writes, monotonic reads, causal
// consistency with version vectors, session consistency): a leaderless,
// Dynamo-style replicated key-value store with per-request quorums.
//
// The lines a user writes first — five nodes on a consistent-hash ring, three
// replicas per key, a write and a read at QUORUM:
//
//	ring, err := shard.NewRing(shard.NodesNamed("n1", "n2", "n3", "n4", "n5"), shard.RingOptions{})
//	c, err := replica.NewCoordinator(replica.Config{Placement: ring, Transport: transport, N: 3})
//	_, err = c.Put(ctx, "cart:42", []byte("milk"), replica.Context{}, replica.Options{Level: replica.Quorum})
//	res, err := c.Get(ctx, "cart:42", replica.Options{Level: replica.Quorum})
//	// res.Values: one value, or siblings written concurrently;
//	// res.Context: what the next Put carries to resolve them.
//
// Runnable examples: ExampleCoordinator_levels, ExampleCoordinator_siblings
// and ExampleCoordinator_SessionToken in this package's documentation, and
// the program examples/replica (three processes on loopback, a partition,
// siblings and their resolution).
//
// # What it is for
//
// This store exists to show and measure the pattern — the way the
// consensus package's Raft store shows the CP side — with the faults a real
// network has injected for real. It keeps each node's data in one process
// (in memory, or on disk with bbolt) and has no delete (so no
// tombstones), no membership protocol and no gossip. Users who outgrow it move to an
// engine built for it, where each level here has a counterpart:
//
//   - Cassandra or ScyllaDB: N is the keyspace's replication_factor; [One],
//     [Quorum] and [All] are the consistency levels ONE, QUORUM (or
//     LOCAL_QUORUM in one data centre) and ALL; read repair, hinted handoff
//     and Merkle-tree repair (nodetool repair) are the same mechanisms.
//     Cassandra resolves conflicts by last-writer-wins only
//     (Config.LastWriterWins here).
//   - Amazon DynamoDB: N is fixed at 3; a read at [One] is an eventually
//     consistent read, a strongly consistent read (ConsistentRead) is close
//     to [Quorum] with [Options.WriteBack]; writes are acknowledged by a
//     majority.
//   - Riak KV (the closest model, with siblings and causal contexts): n_val,
//     r and w, allow_mult=true for siblings, dotted version vectors.
//   - etcd, or this library's consensus package, for strong consistency: a
//     Raft log gives linearizable reads and writes, and the minority side
//     of a partition refuses them — what no R and W here give alone.
//
// # Pieces
//
//   - [Node]: one replica on a local [Store] ([MemStore], or [BoltStore] on
//     disk, backed up online with [BackupBolt] and restored with
//     [RestoreBolt]); it serves
//     requests, keeps hints for nodes that were down, and runs
//     [Node.HandOff] and [Node.AntiEntropy] when its owner calls them — it
//     starts no goroutine.
//   - [Coordinator]: reads and writes over a key's preference list, the
//     first N distinct nodes of a [Placement] such as a [shard.Ring], with
//     N, R and W per request ([Options], [Level]) and a deadline:
//     Config.Timeout, or the request context's if sooner.
//   - [Transport]: [Network] in one process, with partitions, one-way loss,
//     delay and crashed nodes; [HTTPTransport] and [NewHTTPHandler] between
//     processes. A reply that does not decode or breaks the protocol counts
//     as a failed node.
//   - Versions: each value carries a dot and the causal context it was
//     written with (dotted version vectors, Preguiça et al. 2010), so
//     concurrent writes are kept as siblings ([Result.Values]) — even two
//     coordinated by the same node — and a write carrying a read's
//     [Context] supersedes exactly what that read returned. With
//     Config.LastWriterWins the latest timestamp wins instead, and the
//     others are lost.
//   - Repair: read repair (the merge a read computed is written back to the
//     replicas that answered with less), sloppy quorum with hinted handoff
//     (Config.SloppyQuorum, [Node.HandOff]) and anti-entropy with Merkle
//     trees ([Node.AntiEntropy]).
//   - [Session]: read-your-writes, monotonic reads, monotonic writes and
//     writes-follow-reads (Terry et al. 1994), carried between coordinators
//     as a signed token.
//
// # Consistency, plainly
//
// R + W > N makes every read quorum overlap every write quorum, so a read
// sees every write acknowledged before it began. It does not make the
// store linearizable: a read that overlaps a write in progress may see it
// while a later read does not. [Options.WriteBack] — the read writes what
// it returns back to W replicas before answering (ABD) — closes that gap,
// at a second round trip when replicas disagree. With R + W ≤ N a read may
// miss an acknowledged write; the lab measures how often, and for how long
// after the write, under the latency models of Bailis et al.'s
// probabilistically bounded staleness.
//
// Bad input — N < 1, R or W outside [1, N], an unknown level, a context
// from another key, a stale or forged session token, an oversized value,
// an empty key — is an error wrapping [ErrInvalidArgument] and a narrower
// sentinel; a node whose reply is malformed is counted as failed
// ([ErrBadReply]), never trusted.
package replica
