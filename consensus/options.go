package consensus

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Timing holds Raft's failure-detection timers. Failover time, the time from
// a leader's loss to a new leader accepting writes, is at least one
// HeartbeatTimeout: a follower must hear nothing for that long before it
// campaigns. Raft alone notices the silence at a random check up to 3×
// HeartbeatTimeout after the last heartbeat, and may then lose an
// ElectionTimeout-bounded round to a split vote or to a follower that still
// believes in the dead leader; [Timing.FastFailover] removes both delays.
// Shorter timers fail over faster but risk needless elections when the
// network or the machine stalls.
//
// The zero value means [DefaultTiming].
type Timing struct {
	// HeartbeatTimeout is how long a follower waits without hearing from
	// the leader before it starts an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes before it
	// retries with a new term. At least HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without
	// contact from a quorum before it steps down. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a quiet leader waits before sending a
	// heartbeat that carries the commit index.
	CommitTimeout time.Duration
	// FastFailover runs a failure detector beside Raft on every node. A
	// voting follower campaigns as soon as the leader has been silent for
	// HeartbeatTimeout plus rank × HeartbeatTimeout/4, rank being its place
	// by id among the voters other than the leader, instead of at raft's
	// random check: the followers act one after another, never together,
	// so there is no split vote, and the one that completes a quorum wins
	// about HeartbeatTimeout × (1 + (q−1)/4) after the last heartbeat (q the
	// quorum: 1.25× for 3 voters, 1.5× for 5). Non-voters never campaign;
	// pre-vote still keeps a follower cut off in a minority from deposing
	// the leader when it returns.
	//
	// Costs: one goroutine per node that wakes 8 times per
	// HeartbeatTimeout; raft's own follower timer becomes a backstop at 3×
	// HeartbeatTimeout, which is how long detection would take were the
	// detector's goroutine starved; a silence just over HeartbeatTimeout
	// always makes a follower campaign, where raft alone might check too
	// late to notice (pre-vote keeps such a campaign harmless while the
	// leader is alive); and when the leader dies with writes in flight and
	// the follower due to win lacks the last entries, the election still
	// waits out one ElectionTimeout, since Raft elects only an up-to-date
	// log.
	FastFailover bool
}

// DefaultTiming returns hashicorp/raft's defaults: 1 s heartbeat and election
// timeouts, 500 ms leader lease, 50 ms commit timeout, no failure detector.
// Tuned for WANs and busy machines: failover takes one to three heartbeat
// timeouts, seconds rather than milliseconds. BenchmarkNode_Failover
// (timing=default, run with -benchtime 20x) measures it on your machine.
func DefaultTiming() Timing {
	c := raft.DefaultConfig()
	return Timing{
		HeartbeatTimeout:   c.HeartbeatTimeout,
		ElectionTimeout:    c.ElectionTimeout,
		LeaderLeaseTimeout: c.LeaderLeaseTimeout,
		CommitTimeout:      c.CommitTimeout,
	}
}

// LANTiming returns timers for one data centre or one machine: 50 ms
// heartbeat and election timeouts, 50 ms leader lease, 5 ms commit timeout,
// with the failure detector ([Timing.FastFailover]), whose goal is failover
// at p99 within 3× the heartbeat timeout. BenchmarkNode_Failover measures
// it on your machine beside the same timers without the detector
// (timing=lan and timing=lan-plain, run with -benchtime 20x; its
// p99/heartbeat metric is the ratio), BenchmarkNode_FailoverUnderLoad the
// same with writes in flight, where p99 rises because a follower due to win
// that missed the last entries makes the election wait out an election
// timeout; the consensus-election lab experiment charts failover against
// the timeout.
func LANTiming() Timing {
	return Timing{
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		FastFailover:       true,
	}
}

func (t Timing) orDefault() Timing {
	if t == (Timing{}) {
		return DefaultTiming()
	}
	return t
}

func (t Timing) validate() error {
	// The heartbeat and election timeouts are at least the lease's, as
	// checked below: its minimum is theirs.
	if t.LeaderLeaseTimeout < 5*time.Millisecond || t.CommitTimeout < time.Millisecond {
		return fmt.Errorf("%w: timing %+v: heartbeat, election and lease timeouts must be ≥5ms and the commit timeout ≥1ms", ErrInvalidConfig, t)
	}
	if t.LeaderLeaseTimeout > t.HeartbeatTimeout {
		return fmt.Errorf("%w: leader lease timeout %v exceeds heartbeat timeout %v", ErrInvalidConfig, t.LeaderLeaseTimeout, t.HeartbeatTimeout)
	}
	if t.ElectionTimeout < t.HeartbeatTimeout {
		return fmt.Errorf("%w: election timeout %v below heartbeat timeout %v", ErrInvalidConfig, t.ElectionTimeout, t.HeartbeatTimeout)
	}
	return nil
}

// Default limits.
const (
	DefaultMaxValueSize = 1 << 20 // 1 MiB
	DefaultMaxKeySize   = 4 << 10 // 4 KiB
)

// Options configures a [Node]. The zero value is not enough: ID, and either
// Addr or Transport, and either DataDir or InMemory, are required.
type Options struct {
	// ID is the node's stable, unique Raft server id. Required.
	ID string
	// Addr is the TCP address the node listens on for Raft traffic and
	// advertises to peers (host:port, not 0.0.0.0). Required unless
	// Transport is set.
	Addr string
	// Advertise is the address peers dial to reach this node, when it
	// differs from Addr (NAT, a proxy in front of the node). Empty means
	// Addr.
	Advertise string
	// TLS, if set, runs the Raft transport over mutual TLS: the node
	// serves and dials with this config, so every connection between two
	// nodes is encrypted and each end proves it holds a certificate from
	// the cluster's CA. It needs the node's certificate, the CA in both
	// RootCAs and ClientCAs, and ClientAuth tls.RequireAndVerifyClientCert
	// ([MutualTLS] builds one from PEM files); anything less fails
	// [NewNode] with [ErrInvalidConfig] naming what is missing. With TLS,
	// [Node.AddVoter] and [Node.AddNonVoter] first complete a handshake
	// with the new server and refuse one that fails it. Nil means plain
	// TCP, for a trusted network only: anyone who reaches the port can
	// then append to the log.
	TLS *tls.Config
	// Transport, if set, replaces the TCP transport, e.g. a
	// raft.NewInmemTransport for tests. The node closes it on Close if it
	// implements raft.WithClose.
	Transport raft.Transport
	// DataDir holds the durable log and stable store
	// (hashicorp/raft-boltdb/v2, in DataDir/raft.db) and file snapshots
	// (DataDir/snapshots). Required unless InMemory is set. One node at a
	// time: a second node on the same DataDir fails with
	// [ErrInvalidConfig].
	DataDir string
	// InMemory keeps the log, stable store and snapshots in memory: for
	// tests and benchmarks only, since a restart loses everything.
	InMemory bool
	// Timing holds Raft's timers. Zero means [DefaultTiming].
	Timing Timing
	// MaxValueSize bounds a value in bytes. Zero means
	// [DefaultMaxValueSize]. Larger writes fail with [ErrValueTooLarge].
	MaxValueSize int
	// MaxKeySize bounds a key in bytes. Zero means [DefaultMaxKeySize].
	MaxKeySize int
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one. Zero means hashicorp/raft's 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often the node checks whether to snapshot.
	// Zero means hashicorp/raft's 120 s.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot so
	// a slightly lagging follower catches up from the log rather than a
	// snapshot. Zero means hashicorp/raft's 10240.
	TrailingLogs uint64
	// ApplyTimeout bounds how long a write waits to be enqueued when the
	// caller's context has no deadline. Zero means 10 s.
	ApplyTimeout time.Duration
	// Logger receives hashicorp/raft's logs. Nil discards them.
	Logger hclog.Logger
	// Now is the clock used to stamp lease operations on the leader. Nil
	// means time.Now.
	Now func() time.Time
	// WatchHistory is how many events ([Event]) the node keeps for
	// watches; a watcher that falls further behind gets [ErrCompacted].
	// Zero means [DefaultWatchHistory].
	WatchHistory int
	// LeaseSweepInterval is how often the leader looks for expired leases
	// ([Node.GrantLease]) and revokes them through the log. Zero means
	// 500 ms (etcd's). A dead lease lives up to one interval past its TTL.
	LeaseSweepInterval time.Duration
	// MinLeaseTTL is the shortest TTL [Node.GrantLease] accepts. Zero
	// means 3 × the heartbeat timeout, so that a lease outlives an
	// election.
	MinLeaseTTL time.Duration
	// OnLeaderChange, if set, is called with every leadership change this
	// node observes, from a single goroutine, never under a lock. It must
	// not block for long, nor call [Node.Close]: later changes, and Close,
	// wait for it.
	OnLeaderChange func(LeaderState)
}

func (o *Options) validate(customStorage bool) error {
	if o.ID == "" {
		return fmt.Errorf("%w: empty node ID", ErrInvalidConfig)
	}
	if o.Transport == nil && o.Addr == "" {
		return fmt.Errorf("%w: node %q: empty Addr and no Transport", ErrInvalidConfig, o.ID)
	}
	if o.TLS != nil && o.Transport != nil {
		return fmt.Errorf("%w: node %q: both TLS and a Transport set (TLS configures the TCP transport)", ErrInvalidConfig, o.ID)
	}
	if o.TLS != nil {
		if err := validateTLS(o.ID, o.TLS); err != nil {
			return err
		}
	}
	if !customStorage && !o.InMemory && o.DataDir == "" {
		return fmt.Errorf("%w: node %q: empty DataDir path (set DataDir, or InMemory for tests)", ErrInvalidConfig, o.ID)
	}
	if o.InMemory && o.DataDir != "" {
		return fmt.Errorf("%w: node %q: both InMemory and DataDir %q set", ErrInvalidConfig, o.ID, o.DataDir)
	}
	if o.MaxValueSize < 0 || o.MaxKeySize < 0 {
		return fmt.Errorf("%w: negative size limit (MaxValueSize %d, MaxKeySize %d)", ErrInvalidConfig, o.MaxValueSize, o.MaxKeySize)
	}
	if o.SnapshotInterval < 0 || o.ApplyTimeout < 0 || o.LeaseSweepInterval < 0 || o.MinLeaseTTL < 0 {
		return fmt.Errorf("%w: negative duration (SnapshotInterval %v, ApplyTimeout %v, LeaseSweepInterval %v, MinLeaseTTL %v)", ErrInvalidConfig, o.SnapshotInterval, o.ApplyTimeout, o.LeaseSweepInterval, o.MinLeaseTTL)
	}
	if o.WatchHistory < 0 {
		return fmt.Errorf("%w: negative WatchHistory %d", ErrInvalidConfig, o.WatchHistory)
	}
	if o.Timing != (Timing{}) {
		if err := o.Timing.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (o *Options) withDefaults() {
	o.Timing = o.Timing.orDefault()
	if o.MaxValueSize == 0 {
		o.MaxValueSize = DefaultMaxValueSize
	}
	if o.MaxKeySize == 0 {
		o.MaxKeySize = DefaultMaxKeySize
	}
	if o.ApplyTimeout == 0 {
		o.ApplyTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WatchHistory == 0 {
		o.WatchHistory = DefaultWatchHistory
	}
	if o.LeaseSweepInterval == 0 {
		o.LeaseSweepInterval = 500 * time.Millisecond
	}
	if o.MinLeaseTTL == 0 {
		o.MinLeaseTTL = 3 * o.Timing.HeartbeatTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
}

func (o *Options) raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(o.ID)
	c.HeartbeatTimeout, c.ElectionTimeout = detectorRaftTimers(o.Timing)
	c.LeaderLeaseTimeout = o.Timing.LeaderLeaseTimeout
	c.CommitTimeout = o.Timing.CommitTimeout
	if o.SnapshotThreshold > 0 {
		c.SnapshotThreshold = o.SnapshotThreshold
	}
	if o.SnapshotInterval > 0 {
		c.SnapshotInterval = o.SnapshotInterval
	}
	if o.TrailingLogs > 0 {
		c.TrailingLogs = o.TrailingLogs
	}
	c.Logger = o.Logger
	return c
}
