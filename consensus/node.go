package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Node is one member of a Raft group: it owns the Raft instance, its log,
// stable store, snapshots and transport, and the replicated key-value state
// machine. Writes go through the Raft log on the leader; reads are
// linearizable unless the caller asks for [Stale].
//
// Use it, as etcd and Consul are used, for small state that must never
// diverge: configuration, locks, leader election, a service registry. It
// costs a majority round trip per write, a quorum check per linearizable
// read, and availability in a minority partition; it is not a bulk store
// (the whole state lives in memory and in every snapshot).
//
// A Node is safe for concurrent use. Close stops every goroutine it started.
type Node struct {
	opts  Options
	raft  *raft.Raft
	fsm   *fsm
	trans raft.Transport
	store *storage // closed by Close when the node opened it from DataDir

	obsCh      chan raft.Observation
	observer   *raft.Observer
	done       chan struct{} // closed by Close
	raftDown   chan struct{} // closed by the leadership loop once Raft has shut down (on Close, or after Leave)
	loopDone   chan struct{} // closed when the leadership loop exits
	detectDone chan struct{} // closed when the failure detector exits (at once without one)

	mu        sync.Mutex
	state     LeaderState                // guarded by mu
	subs      map[*subscription]struct{} // guarded by mu
	closed    bool                       // guarded by mu
	closeErr  error                      // guarded by mu
	closeOnce sync.Once
	shutDown  chan struct{} // closed when Close's shutdown has finished
	closing   atomic.Bool   // set when Close begins: every later call fails with ErrClosed

	barrierMu   sync.Mutex    // serializes termBarrier
	barrierTerm atomic.Uint64 // the term whose no-op this leader has applied
	leaseMu     sync.Mutex    // serializes leaseBarrier
	leaseTerm   atomic.Uint64 // the term whose lease extension this leader has applied

	applies, applyErrors, linReads, staleReads, notLeader, leaderChanges, detectorTriggers atomic.Uint64
}

// Server is one member of the Raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// NonVoter servers replicate the log but do not vote or count toward
	// the quorum: read replicas, or a new node catching up before it is
	// promoted.
	NonVoter bool `json:"non_voter,omitempty"`
}

// NewNode opens the node's storage, starts its transport and Raft. A new
// cluster needs one [Node.Bootstrap]; a node that has state on disk
// rejoins its cluster by itself; a fresh node joins when the leader calls
// [Node.AddVoter] or [Node.AddNonVoter] for it.
func NewNode(opts Options) (*Node, error) {
	return newNode(opts, nil)
}

func newNode(opts Options, st *storage) (*Node, error) {
	if err := opts.validate(st != nil); err != nil {
		return nil, err
	}
	opts.withDefaults()
	n := &Node{opts: opts, fsm: newFSM(), done: make(chan struct{}), raftDown: make(chan struct{}), shutDown: make(chan struct{}), loopDone: make(chan struct{}), detectDone: make(chan struct{}), subs: map[*subscription]struct{}{}}
	n.fsm.maxHistory = opts.WatchHistory
	var err error
	if st == nil {
		if st, err = opts.openStorage(); err != nil {
			return nil, err
		}
	}
	n.store = st
	n.trans = opts.Transport
	if n.trans == nil {
		var adv net.Addr
		if opts.Advertise != "" {
			if adv, err = net.ResolveTCPAddr("tcp", opts.Advertise); err != nil {
				n.store.close()
				return nil, fmt.Errorf("%w: node %q: advertise address %q: %v", ErrInvalidConfig, opts.ID, opts.Advertise, err)
			}
		}
		var t *raft.NetworkTransport
		if opts.TLS != nil {
			t, err = newTLSTransport(opts.Addr, adv, opts.TLS, 3, 10*time.Second, opts.Logger)
		} else {
			t, err = raft.NewTCPTransportWithLogger(opts.Addr, adv, 3, 10*time.Second, opts.Logger)
		}
		if err != nil {
			n.store.close()
			return nil, fmt.Errorf("consensus: node %q: listen on %q: %w", opts.ID, opts.Addr, err)
		}
		n.trans = unpipelined{t}
	}
	n.raft, err = startRaft(opts.raftConfig(), n.fsm, st, n.trans)
	if err != nil {
		n.closeTransport()
		n.store.close()
		return nil, fmt.Errorf("consensus: node %q: start raft: %w", opts.ID, err)
	}
	n.obsCh = make(chan raft.Observation, 1)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(n.observer)
	n.state = n.currentState()
	go n.leadershipLoop()
	if opts.Timing.FastFailover {
		go n.detectLoop(newDetector(n, n.raft, time.Now()))
	} else {
		close(n.detectDone)
	}
	return n, nil
}

// startRaft runs raft.NewRaft, which panics when it cannot read a log
// entry it replays at start: a damaged log must fail one node's start with
// an error, not bring down the process that opens it. NewRaft starts no
// goroutine before that point.
func startRaft(conf *raft.Config, fsm raft.FSM, st *storage, trans raft.Transport) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			if perr, ok := p.(error); ok {
				err = fmt.Errorf("read the log: %w", perr)
			} else {
				err = fmt.Errorf("read the log: %v", p)
			}
		}
	}()
	return raft.NewRaft(conf, fsm, st.logs, st.stable, st.snaps, trans)
}

func (o *Options) openStorage() (*storage, error) {
	if o.InMemory {
		return newInmemStorage(), nil
	}
	return openDurableStorage(o.ID, o.DataDir, o.Logger)
}

// unpipelined is a NetworkTransport that refuses pipelined replication,
// so that the leader sends each AppendEntries and waits for its answer.
// hashicorp/raft's pipeline can deadlock once a follower refuses an
// append: the decoder stops, the sender picks one more trigger and waits
// forever to hand over its request, so the follower is never replicated to
// again (its heartbeats still arrive, so no election heals it) and the
// leader's Shutdown waits for that sender forever. Raft batches entries
// per request (MaxAppendEntries), so a busy leader still sends many
// commands per round trip.
type unpipelined struct{ *raft.NetworkTransport }

// AppendEntriesPipeline refuses: the leader falls back to AppendEntries.
func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (n *Node) closeTransport() error {
	// NetworkTransport.Close leaves pooled connections open, and with them
	// the peer's connection handlers; CloseStreams closes them.
	if c, ok := n.trans.(interface{ CloseStreams() }); ok {
		c.CloseStreams()
	}
	if c, ok := n.trans.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// ID returns the node's server id.
func (n *Node) ID() string {
	if n == nil {
		return ""
	}
	return n.opts.ID
}

// Addr returns the node's Raft address as peers see it ("" for a Node not
// made by [NewNode]).
func (n *Node) Addr() string {
	if !n.started() {
		return ""
	}
	return string(n.trans.LocalAddr())
}

// started reports whether n was made by NewNode; the methods of a zero Node
// fail with ErrClosed or report nothing instead of using its missing Raft
// instance.
func (n *Node) started() bool { return n != nil && n.raft != nil }

// usable returns why a call with ctx cannot run on n: a Node not made by
// NewNode or closed (ErrClosed, at once rather than a hang or a panic), or a
// nil context (ErrInvalidArgument).
func (n *Node) usable(ctx context.Context) error {
	if !n.started() {
		return fmt.Errorf("%w: zero Node (not made by NewNode)", ErrClosed)
	}
	if n.closing.Load() {
		return fmt.Errorf("%w: node %q", ErrClosed, n.opts.ID)
	}
	if ctx == nil {
		return fmt.Errorf("%w: node %q: nil context", ErrInvalidArgument, n.opts.ID)
	}
	return nil
}

// Close shuts Raft down (without leaving the cluster: see [Node.Leave]),
// closes the transport and storage, and closes every subscription channel.
// It waits for all of that until ctx is done; then it returns an error
// wrapping ctx's error, and the shutdown goes on to its end. It is safe to
// call more than once: a later call waits, under its own ctx, for the same
// shutdown. Every other call made after it fails at once with [ErrClosed].
// On a Node not made by [NewNode] it does nothing.
func (n *Node) Close(ctx context.Context) error {
	if !n.started() {
		return nil
	}
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		go n.shutdown()
	})
	select {
	case <-n.shutDown:
	case <-ctx.Done():
		return fmt.Errorf("consensus: node %q is still shutting down: %w", n.opts.ID, ctx.Err())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closeErr
}

// shutdown is Close's work; it closes n.shutDown when done.
func (n *Node) shutdown() {
	defer close(n.shutDown)
	if t, ok := n.trans.(interface{ interrupt() }); ok {
		t.interrupt() // a LocalCluster's slow link must not delay shutdown
	}
	err := n.raft.Shutdown().Error()
	n.raft.DeregisterObserver(n.observer)
	close(n.done)
	<-n.loopDone
	<-n.detectDone
	err = errors.Join(err, n.closeTransport(), n.store.close())
	n.mu.Lock()
	n.closeErr = err
	for s := range n.subs {
		close(s.ch)
	}
	n.subs = nil
	n.mu.Unlock()
}

// Bootstrap starts a new cluster whose first configuration is servers. With
// no servers it bootstraps a single-node cluster of this node. Call it on
// one node (or on every listed node with the same list) exactly once in the
// cluster's life; it fails with raft.ErrCantBootstrap if the node already
// has state.
func (n *Node) Bootstrap(ctx context.Context, servers ...Server) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	if len(servers) == 0 {
		servers = []Server{{ID: n.opts.ID, Address: n.Addr()}}
	}
	cfg := raft.Configuration{}
	ids, addrs := map[string]bool{}, map[string]bool{}
	self := false
	for _, s := range servers {
		if s.ID == "" || s.Address == "" {
			return fmt.Errorf("%w: bootstrap server %+v: empty id or address", ErrInvalidArgument, s)
		}
		if ids[s.ID] || addrs[s.Address] {
			return fmt.Errorf("%w: bootstrap server %q at %q listed twice", ErrDuplicateServer, s.ID, s.Address)
		}
		ids[s.ID], addrs[s.Address] = true, true
		self = self || s.ID == n.opts.ID
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address), Suffrage: suffrage(s.NonVoter)})
	}
	if !self {
		return fmt.Errorf("%w: bootstrap list does not include this node %q", ErrInvalidArgument, n.opts.ID)
	}
	return n.wait(ctx, n.raft.BootstrapCluster(cfg))
}

func suffrage(nonVoter bool) raft.ServerSuffrage {
	if nonVoter {
		return raft.Nonvoter
	}
	return raft.Voter
}

// wait waits for a raft future, giving up (but not cancelling the
// operation) when ctx ends.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	bindShutdown(f, n.raftDown)
	if ctx.Done() == nil {
		return n.mapErr(f.Error())
	}
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		return n.mapErr(err)
	case <-ctx.Done():
		return fmt.Errorf("consensus: node %q: %w", n.opts.ID, ctx.Err())
	}
}

// bindShutdown makes f's Error return when done closes. hashicorp/raft
// leaves futures that are still queued at shutdown (in its buffered verify,
// configuration and FSM channels) unanswered, and sets the ShutdownCh field
// that guards against this on only a few future types; without it a waiter
// on such a future would block forever once Raft has shut down, on Close or
// when a leader shuts itself down after committing its own removal. ShutdownCh is an exported
// field of every future's embedded deferError and only Error reads it, so
// setting it before the first Error call is safe.
//
// It runs on every write, so the field is found by name once per future
// type: a lookup by name walks the embedded structs and allocates maps,
// which added garbage to every write.
func bindShutdown(f raft.Future, done chan struct{}) {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return
	}
	path, ok := shutdownFields.Load(v.Type())
	if !ok {
		path, _ = shutdownFields.LoadOrStore(v.Type(), shutdownField(v.Type().Elem()))
	}
	index := path.([]int)
	if index == nil {
		return
	}
	field, err := v.Elem().FieldByIndexErr(index)
	if err == nil && field.CanSet() && field.IsNil() {
		field.Set(reflect.ValueOf(done))
	}
}

// shutdownFields maps a future's pointer type to the index of its
// ShutdownCh field, nil when it has none.
var shutdownFields sync.Map

func shutdownField(t reflect.Type) []int {
	f, ok := t.FieldByName("ShutdownCh")
	if !ok || f.Type != reflect.TypeFor[chan struct{}]() {
		return nil
	}
	return f.Index
}

// mapErr turns hashicorp/raft's errors into the package's sentinels.
func (n *Node) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		n.notLeader.Add(1)
		return n.notLeaderErr()
	case errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: node %q: a restore replaced the state: %w", ErrIndeterminate, n.opts.ID, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: node %q lost leadership: %w", ErrIndeterminate, n.opts.ID, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: node %q: %w", ErrClosed, n.opts.ID, err)
	}
	return fmt.Errorf("consensus: node %q: %w", n.opts.ID, err)
}

func (n *Node) notLeaderErr() error {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// Servers returns the current Raft configuration.
func (n *Node) Servers(ctx context.Context) ([]Server, error) {
	if err := n.usable(ctx); err != nil {
		return nil, err
	}
	f := n.raft.GetConfiguration()
	if err := n.wait(ctx, f); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), NonVoter: s.Suffrage != raft.Voter})
	}
	return out, nil
}

// AddVoter adds a voting member, or promotes a non-voter. Call it on the
// leader. Adding a server that is already a member with the same address is
// a no-op.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.addServer(ctx, id, addr, false)
}

// AddNonVoter adds a member that replicates the log without voting.
func (n *Node) AddNonVoter(ctx context.Context, id, addr string) error {
	return n.addServer(ctx, id, addr, true)
}

func (n *Node) addServer(ctx context.Context, id, addr string, nonVoter bool) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	if id == "" || addr == "" {
		return fmt.Errorf("%w: add server: empty id %q or address %q", ErrInvalidArgument, id, addr)
	}
	if id == n.opts.ID && addr != n.Addr() {
		// The same id and address is a join retried after it succeeded,
		// now reaching the node that has since been elected: a no-op
		// below, as for any member.
		return fmt.Errorf("%w: cannot join node %q to itself", ErrInvalidArgument, id)
	}
	servers, err := n.Servers(ctx)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.Address == addr && s.ID != id {
			return fmt.Errorf("%w: address %q already used by node %q", ErrDuplicateServer, addr, s.ID)
		}
		if s.ID == id && s.Address != addr {
			return fmt.Errorf("%w: node %q already a member at %q, not %q (remove it first)", ErrDuplicateServer, id, s.Address, addr)
		}
		if s.ID == id && s.NonVoter == nonVoter {
			return nil
		}
	}
	if conf := n.tlsConfig(); conf != nil {
		if err := probeTLS(ctx, conf, addr); err != nil {
			return fmt.Errorf("consensus: add server %q: %w", id, err)
		}
	}
	if nonVoter {
		return n.wait(ctx, n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx)))
	}
	return n.wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx)))
}

// tlsConfig returns the TLS config of the node's Raft transport, nil for
// plain TCP.
func (n *Node) tlsConfig() *tls.Config {
	if n.opts.TLS != nil {
		return n.opts.TLS
	}
	if t, ok := n.trans.(*faultTransport); ok {
		return t.tls
	}
	return nil
}

// RemoveServer removes a member. Call it on the leader. Removing the leader
// itself makes it step down once the change commits; hashicorp/raft may step
// down before it answers the removal, so bound ctx, or better hand
// leadership over first ([Node.TransferLeadership]) and remove the node from
// its successor, as [LocalCluster.RemoveNode] does.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	servers, err := n.Servers(ctx)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id {
			return n.wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx)))
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownNode, id)
}

// TransferLeadership asks the leader to hand leadership to the server id,
// or to the most up-to-date follower when id is empty: the graceful way to
// take a leader down for maintenance.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	if id == "" {
		return n.wait(ctx, n.raft.LeadershipTransfer())
	}
	servers, err := n.Servers(ctx)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id {
			return n.wait(ctx, n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(s.Address)))
		}
	}
	return fmt.Errorf("%w: transfer leadership to %q", ErrUnknownNode, id)
}

// Leave removes this node from the cluster gracefully. It must be called on
// the leader: the leader commits its own removal and shuts its Raft down
// (its later calls fail with [ErrClosed]; Close still releases it), and
// the remaining members elect a new leader. A follower cannot remove itself: it
// gets a [*NotLeaderError]; ask the leader to [Node.RemoveServer] it (or
// [Node.TransferLeadership] to it first).
func (n *Node) Leave(ctx context.Context) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	if !n.IsLeader() {
		return n.notLeaderErr()
	}
	servers, err := n.Servers(ctx)
	if err != nil {
		return err
	}
	if len(servers) == 1 {
		return fmt.Errorf("%w: node %q is the only member", ErrInvalidArgument, n.opts.ID)
	}
	err = n.RemoveServer(ctx, n.opts.ID)
	if errors.Is(err, ErrClosed) && !n.closing.Load() {
		// Raft shuts a leader down once its own removal has committed,
		// and may do so before it answers the removal.
		return nil
	}
	return err
}

// Snapshot asks Raft to take a snapshot now and compact the log.
func (n *Node) Snapshot(ctx context.Context) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	return n.wait(ctx, n.raft.Snapshot())
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return n.opts.ApplyTimeout
}

// Stats is a snapshot of a node's Raft and store state.
type Stats struct {
	ID, State         string
	Term              uint64
	LeaderID          string
	LastIndex         uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastSnapshotIndex uint64
	LastContact       time.Time // zero on the leader
	Keys              int
	Applies           uint64 // writes committed through this node
	ApplyErrors       uint64 // writes that failed (not leader, unknown outcome, rejected)
	LinearizableReads uint64
	StaleReads        uint64
	NotLeaderErrors   uint64
	LeaderChanges     uint64 // leadership changes this node observed
	// DetectorTriggers counts the times the failure detector
	// ([Timing.FastFailover]) found the leader silent and made this node
	// re-check it at once (and campaign, unless the leader spoke up just
	// then). Always zero without the detector and on non-voters.
	DetectorTriggers uint64
}

// Stats returns a snapshot of the node's state. It is cheap except for the
// last snapshot index, which hashicorp/raft only reports through its string
// statistics. A Node not made by [NewNode] reports the zero Stats.
func (n *Node) Stats() Stats {
	if !n.started() {
		return Stats{}
	}
	_, id := n.raft.LeaderWithID()
	applied, _ := n.fsm.appliedIndex()
	snap, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	s := Stats{
		ID: n.opts.ID, State: n.raft.State().String(), Term: n.raft.CurrentTerm(), LeaderID: string(id),
		LastIndex: n.raft.LastIndex(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: applied,
		LastSnapshotIndex: snap, Keys: n.fsm.size(),
		Applies: n.applies.Load(), ApplyErrors: n.applyErrors.Load(), LinearizableReads: n.linReads.Load(),
		StaleReads: n.staleReads.Load(), NotLeaderErrors: n.notLeader.Load(), LeaderChanges: n.leaderChanges.Load(),
		DetectorTriggers: n.detectorTriggers.Load(),
	}
	if n.raft.State() != raft.Leader {
		s.LastContact = n.raft.LastContact()
	}
	return s
}
