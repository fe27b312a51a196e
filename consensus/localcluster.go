package consensus

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Network selects the transport of a [LocalCluster].
type Network int

const (
	// InMemNetwork connects the nodes with hashicorp/raft's in-memory
	// transport: fast and deterministic enough for logic tests.
	InMemNetwork Network = iota
	// TCPNetwork connects them with the real TCP transport on loopback.
	TCPNetwork
)

// ClusterOptions configures a [LocalCluster]. The zero value is a 3-node
// in-memory cluster with [LANTiming].
type ClusterOptions struct {
	// Nodes is the initial number of voters. Zero means 3.
	Nodes int
	// Network is the transport. Zero means InMemNetwork.
	Network Network
	// DataDir, if set, gives each node durable storage in DataDir/<id>.
	// Empty means in-memory storage, which still survives Crash/Restart
	// because the cluster keeps it.
	DataDir string
	// Pipelining enables hashicorp/raft's pipelined replication for higher
	// write throughput. Link faults are then checked only when a pipeline
	// opens, so leave it off for fault tests. A Node made by [NewNode] never
	// pipelines: the pipeline can wedge replication to a follower that once
	// refused an append, and the leader's shutdown with it; turn it on for
	// benchmarks only.
	Pipelining bool
	// Node is the template for every node's options; ID, Addr, Transport,
	// DataDir and InMemory are set by the cluster. With Node.TLS (every
	// node then presents the same certificate, which must name
	// 127.0.0.1) the TCP network runs over mutual TLS. A zero Node.Timing
	// means LANTiming (not DefaultTiming as for a single Node).
	Node Options
}

// LocalCluster runs a whole Raft group in one process for tests, demos,
// benchmarks and the lab, with a fault model: partitions (symmetric and
// one-way), slow links, crashes and restarts of a node with its data, and
// membership changes. Faults act on each node's outgoing RPCs: a cut link
// from a to b makes a's requests to b fail at once.
//
// Nodes are named n1, n2, .... A LocalCluster is safe for concurrent use.
// After Close, and on a zero LocalCluster (not made by [NewLocalCluster]),
// the methods that report an error fail at once with [ErrClosed] and the
// fault methods do nothing.
type LocalCluster struct {
	opts ClusterOptions
	net  *faultNet

	mu          sync.Mutex
	members     map[string]*member // guarded by mu
	order       []string           // guarded by mu: ids in creation order
	next        int                // guarded by mu: the next id number
	closed      bool               // guarded by mu
	closedNodes []*Node            // the nodes Close stops; guarded by mu
}

type member struct {
	id, addr string
	node     *Node // nil while crashed
	store    *storage
	inmem    *raft.InmemTransport
}

// NewLocalCluster starts and bootstraps a cluster and waits until it has a
// leader (or ctx ends). On a DataDir that holds an earlier cluster's nodes
// it reopens them from disk instead of bootstrapping them.
func NewLocalCluster(ctx context.Context, opts ClusterOptions) (*LocalCluster, error) {
	if opts.Nodes < 0 {
		return nil, fmt.Errorf("%w: cluster of %d nodes", ErrInvalidConfig, opts.Nodes)
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Network != InMemNetwork && opts.Network != TCPNetwork {
		return nil, fmt.Errorf("%w: network %d", ErrInvalidConfig, opts.Network)
	}
	if opts.Node.Timing == (Timing{}) {
		opts.Node.Timing = LANTiming()
	}
	if opts.Node.TLS != nil && opts.Network != TCPNetwork {
		return nil, fmt.Errorf("%w: TLS needs the TCP network", ErrInvalidConfig)
	}
	probe := opts.Node
	probe.ID, probe.Addr, probe.InMemory, probe.DataDir = "probe", "probe", true, ""
	if err := probe.validate(false); err != nil {
		return nil, err
	}
	c := &LocalCluster{opts: opts, net: newFaultNet(), members: map[string]*member{}}
	var servers []Server
	for range opts.Nodes {
		m, err := c.newMember()
		if err == nil {
			m, err = c.start(m)
		}
		if err != nil {
			_ = c.Close(context.Background())
			return nil, err
		}
		servers = append(servers, Server{ID: m.id, Address: m.addr})
	}
	for _, id := range c.IDs() {
		// Every node gets the same configuration; a late node may already
		// have received it from an early leader, and a reopened one has it
		// on disk.
		err := c.Node(id).Bootstrap(ctx, servers...)
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = c.Close(context.Background())
			return nil, err
		}
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// usableLocked returns why the cluster cannot change: it is zero or closed.
// The caller holds c.mu unless c is nil.
func (c *LocalCluster) usableLocked() error {
	switch {
	case c == nil || c.members == nil:
		return fmt.Errorf("%w: zero LocalCluster (not made by NewLocalCluster)", ErrClosed)
	case c.closed:
		return fmt.Errorf("%w: local cluster", ErrClosed)
	}
	return nil
}

func (c *LocalCluster) usable() error {
	if c == nil {
		return c.usableLocked()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usableLocked()
}

func (c *LocalCluster) newMember() (*member, error) {
	if c == nil {
		return nil, c.usableLocked()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return nil, err
	}
	c.next++
	m := &member{id: fmt.Sprintf("n%d", c.next)}
	if c.opts.DataDir == "" {
		m.store = newInmemStorage()
	}
	c.members[m.id] = m
	c.order = append(c.order, m.id)
	return m, nil
}

// start creates m's transport and node.
func (c *LocalCluster) start(m *member) (*member, error) {
	opts := c.opts.Node
	opts.ID = m.id
	var tr raft.Transport
	switch c.opts.Network {
	case InMemNetwork:
		m.addr = m.id
		_, m.inmem = raft.NewInmemTransportWithTimeout(raft.ServerAddress(m.id), 4*opts.Timing.HeartbeatTimeout)
		tr = m.inmem
	case TCPNetwork:
		bind := m.addr
		if bind == "" {
			bind = "127.0.0.1:0"
		}
		var t *raft.NetworkTransport
		var err error
		if opts.TLS != nil {
			t, err = newTLSTransport(bind, nil, opts.TLS, 3, 4*opts.Timing.HeartbeatTimeout, opts.Logger)
		} else {
			t, err = raft.NewTCPTransportWithLogger(bind, nil, 3, 4*opts.Timing.HeartbeatTimeout, opts.Logger)
		}
		if err != nil {
			return nil, fmt.Errorf("consensus: node %q: listen on %s: %w", m.id, bind, err)
		}
		m.addr = string(t.LocalAddr())
		tr = t
	}
	ft := newFaultTransport(tr, m.id, c.net, c.opts.Pipelining)
	ft.tls, opts.TLS = opts.TLS, nil
	opts.Transport = ft
	if c.opts.DataDir != "" {
		opts.DataDir = filepath.Join(c.opts.DataDir, m.id)
	}
	n, err := newNode(opts, m.store)
	if err != nil {
		if cl, ok := tr.(raft.WithClose); ok {
			_ = cl.Close()
		}
		return nil, err
	}
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		// Closed while the node started: nothing would stop it.
		c.mu.Unlock()
		return nil, errors.Join(err, n.Close(context.Background()))
	}
	m.node = n
	if m.inmem != nil {
		for _, o := range c.members {
			if o != m && o.node != nil {
				m.inmem.Connect(raft.ServerAddress(o.id), o.inmem)
				o.inmem.Connect(raft.ServerAddress(m.id), m.inmem)
			}
		}
	}
	c.mu.Unlock()
	return m, nil
}

// IDs returns the ids of every member, running or crashed, in creation
// order.
func (c *LocalCluster) IDs() []string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.order)
}

// Node returns the running node id, or nil if it is crashed or unknown.
func (c *LocalCluster) Node(id string) *Node {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[id]; m != nil {
		return m.node
	}
	return nil
}

// Nodes returns every running node.
func (c *LocalCluster) Nodes() []*Node {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, id := range c.order {
		if n := c.members[id].node; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Leader returns a running node that believes it is the leader, or nil.
func (c *LocalCluster) Leader() *Node {
	for _, n := range c.Nodes() {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

// WaitLeader waits until a running node other than those in except
// believes it is leader and returns it. It fails with [ErrClosed] once the
// cluster is closed, since no leader can come then.
func (c *LocalCluster) WaitLeader(ctx context.Context, except ...string) (*Node, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: WaitLeader with a nil context", ErrInvalidArgument)
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if err := c.usable(); err != nil {
			return nil, err
		}
		for _, n := range c.Nodes() {
			if n.IsLeader() && !slices.Contains(except, n.ID()) {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("consensus: waiting for a leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (c *LocalCluster) setLinks(fn func(from, to string) (down bool, ok bool)) {
	if c == nil || c.net == nil {
		return
	}
	ids := c.IDs()
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				continue
			}
			if down, ok := fn(a, b); ok {
				c.net.down[[2]string{a, b}] = down
			}
		}
	}
}

// Partition splits the cluster into groups that cannot reach each other in
// either direction. A node in no group is cut off from everyone.
func (c *LocalCluster) Partition(groups ...[]string) {
	group := map[string]int{}
	for i, g := range groups {
		for _, id := range g {
			group[id] = i + 1
		}
	}
	c.setLinks(func(a, b string) (bool, bool) {
		return group[a] == 0 || group[a] != group[b], true
	})
}

// Isolate cuts node id off from every other node, in both directions.
func (c *LocalCluster) Isolate(id string) {
	c.setLinks(func(a, b string) (bool, bool) { return true, a == id || b == id })
}

// CutLink drops RPCs sent from one node to another (a one-way partition:
// to can still reach from).
func (c *LocalCluster) CutLink(from, to string) {
	if c == nil || c.net == nil {
		return
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.net.down[[2]string{from, to}] = true
}

// SetLatency delays every RPC sent from one node to another by d (a slow
// link); zero removes the delay.
func (c *LocalCluster) SetLatency(from, to string, d time.Duration) {
	if c == nil || c.net == nil {
		return
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.net.delay[[2]string{from, to}] = d
}

// Heal restores every link (latencies stay).
func (c *LocalCluster) Heal() {
	if c == nil || c.net == nil {
		return
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	clear(c.net.down)
}

// Crash stops node id abruptly (no leadership transfer, no leave); its
// storage is kept for Restart.
func (c *LocalCluster) Crash(id string) error {
	if c == nil {
		return c.usableLocked()
	}
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	m := c.members[id]
	if m == nil || m.node == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: crash of %q (not running)", ErrUnknownNode, id)
	}
	n := m.node
	m.node = nil
	if m.inmem != nil {
		for _, o := range c.members {
			if o != m && o.inmem != nil {
				o.inmem.Disconnect(raft.ServerAddress(m.id))
			}
		}
	}
	c.mu.Unlock()
	return n.Close(context.Background())
}

// Restart starts a crashed node again on its old storage and address.
func (c *LocalCluster) Restart(id string) (*Node, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	m := c.members[id]
	if m == nil || m.node != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: restart of %q (not crashed)", ErrUnknownNode, id)
	}
	c.mu.Unlock()
	if _, err := c.start(m); err != nil {
		return nil, err
	}
	return m.node, nil
}

// AddNode starts a new node and has the leader add it as a voter (or a
// non-voter).
func (c *LocalCluster) AddNode(ctx context.Context, nonVoter bool) (*Node, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: AddNode with a nil context", ErrInvalidArgument)
	}
	m, err := c.newMember()
	if err == nil {
		m, err = c.start(m)
	}
	if err != nil {
		return nil, err
	}
	for {
		leader, err := c.WaitLeader(ctx)
		if err != nil {
			return m.node, err
		}
		if nonVoter {
			err = leader.AddNonVoter(ctx, m.id, m.addr)
		} else {
			err = leader.AddVoter(ctx, m.id, m.addr)
		}
		if !errors.Is(err, ErrNotLeader) {
			return m.node, err
		}
	}
}

// RemoveNode has the leader remove node id from the configuration, then
// stops it. It retries across leader changes. Removing the only voter
// fails with [ErrInvalidArgument].
func (c *LocalCluster) RemoveNode(ctx context.Context, id string) error {
	for {
		leader, err := c.WaitLeader(ctx)
		if err != nil {
			return err
		}
		if leader.ID() == id {
			servers, err := leader.Servers(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				continue
			}
			if !slices.ContainsFunc(servers, func(s Server) bool { return s.ID != id && !s.NonVoter }) {
				// No one could take over: a transfer would fail forever.
				return fmt.Errorf("%w: cannot remove node %q, the only voter", ErrInvalidArgument, id)
			}
			// Hand leadership over first and remove the node from its
			// successor: a leader committing its own removal steps down
			// mid-change, and hashicorp/raft may then never answer the
			// removal's future.
			if err := leader.TransferLeadership(ctx, ""); err != nil {
				if ctx.Err() != nil {
					return err
				}
				continue // try again with whoever leads now
			}
			if _, err := c.WaitLeader(ctx, id); err != nil {
				return err
			}
			continue
		}
		err = leader.RemoveServer(ctx, id)
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrIndeterminate) {
			continue // a retry finds the change done (ErrUnknownNode) or redoes it
		}
		if err != nil && !errors.Is(err, ErrUnknownNode) {
			return err
		}
		c.mu.Lock()
		m := c.members[id]
		delete(c.members, id)
		c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == id })
		c.mu.Unlock()
		if m == nil {
			return err // never a member
		}
		if m.node != nil {
			return m.node.Close(context.Background())
		}
		return nil
	}
}

// Close stops every node, waiting for them until ctx is done (see
// [Node.Close]). It is safe to call more than once: a later call waits,
// under its own ctx, for the nodes' shutdown.
func (c *LocalCluster) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for _, m := range c.members {
			if m.node != nil {
				c.closedNodes = append(c.closedNodes, m.node)
			}
		}
	}
	nodes := c.closedNodes
	c.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Failover measures one failover: it isolates the current leader, times
// how long until another node is leader and has committed a write (the
// "leader loss → new leader accepting writes" time), then heals the
// network and waits until the old leader follows the new one and every
// node has applied that write, so that back-to-back trials each start from
// a whole, caught-up cluster.
func (c *LocalCluster) Failover(ctx context.Context) (time.Duration, error) {
	old, err := c.WaitLeader(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	c.Isolate(old.ID())
	defer c.Heal()
	var (
		d     time.Duration
		index uint64
	)
	for {
		n, err := c.WaitLeader(ctx, old.ID())
		if err != nil {
			return 0, err
		}
		if _, err = n.Put(ctx, "consensus/failover", []byte(n.ID())); err == nil {
			d = time.Since(start)
			index = n.raft.AppliedIndex()
			break
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	c.Heal()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		if err := c.usable(); err != nil {
			return d, err
		}
		id, _ := old.Leader()
		caughtUp := true
		for _, n := range c.Nodes() {
			caughtUp = caughtUp && n.raft.AppliedIndex() >= index
		}
		if caughtUp && !old.IsLeader() && id != "" && id != old.ID() {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("consensus: waiting for %s to rejoin: %w", old.ID(), ctx.Err())
		case <-t.C:
		}
	}
}
