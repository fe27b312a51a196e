package consensus

import (
	"crypto/tls"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// faultNet is the fault model of a [LocalCluster]: per directed link
// (from → to), whether RPCs are dropped and how much latency they get.
type faultNet struct {
	mu    sync.RWMutex
	down  map[[2]string]bool          // guarded by mu
	delay map[[2]string]time.Duration // guarded by mu
}

func newFaultNet() *faultNet {
	return &faultNet{down: map[[2]string]bool{}, delay: map[[2]string]time.Duration{}}
}

// link reports whether from can reach to and the latency to add.
func (f *faultNet) link(from, to string) (bool, time.Duration) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	k := [2]string{from, to}
	return !f.down[k], f.delay[k]
}

// faultTransport wraps a node's transport and applies the faultNet to every
// outgoing RPC. Pipelining is disabled so that every AppendEntries passes
// through the fault check.
type faultTransport struct {
	raft.Transport
	self     string
	net      *faultNet
	pipeline bool        // allow pipelined replication (faults checked at open only)
	tls      *tls.Config // the cluster's TLS config, for Node.AddVoter's handshake; nil without TLS

	stopOnce sync.Once
	stop     chan struct{} // closed by interrupt: a delayed RPC fails at once
}

func newFaultTransport(tr raft.Transport, self string, net *faultNet, pipeline bool) *faultTransport {
	return &faultTransport{Transport: tr, self: self, net: net, pipeline: pipeline, stop: make(chan struct{})}
}

// interrupt ends every delay in progress and fails later RPCs. The node
// calls it before shutting raft down, which waits for the goroutines that
// send RPCs: without it, Close would wait out the latency of a slow link.
func (t *faultTransport) interrupt() {
	t.stopOnce.Do(func() { close(t.stop) })
}

var (
	_ raft.Transport   = (*faultTransport)(nil)
	_ raft.WithClose   = (*faultTransport)(nil)
	_ raft.WithPreVote = (*faultTransport)(nil)
	_ raft.WithPeers   = (*faultTransport)(nil)
)

func (t *faultTransport) check(id raft.ServerID) error {
	ok, d := t.net.link(t.self, string(id))
	if d > 0 { // (or d >= 0: a timer of zero fires at once)
		delay := time.NewTimer(d)
		defer delay.Stop()
		select {
		case <-delay.C:
		case <-t.stop:
		}
	}
	select {
	case <-t.stop:
		return fmt.Errorf("consensus: node %s is shutting down", t.self)
	default:
	}
	if !ok {
		return fmt.Errorf("consensus: link %s → %s is down", t.self, id)
	}
	return nil
}

func (t *faultTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if !t.pipeline {
		return nil, raft.ErrPipelineReplicationNotSupported
	}
	if err := t.check(id); err != nil {
		return nil, err
	}
	return t.Transport.AppendEntriesPipeline(id, target)
}

func (t *faultTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if err := t.check(id); err != nil {
		return err
	}
	return t.Transport.AppendEntries(id, target, args, resp)
}

func (t *faultTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := t.check(id); err != nil {
		return err
	}
	return t.Transport.RequestVote(id, target, args, resp)
}

func (t *faultTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if err := t.check(id); err != nil {
		return err
	}
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return fmt.Errorf("consensus: transport does not support pre-vote")
	}
	return pv.RequestPreVote(id, target, args, resp)
}

func (t *faultTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if err := t.check(id); err != nil {
		return err
	}
	return t.Transport.InstallSnapshot(id, target, args, resp, data)
}

func (t *faultTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	if err := t.check(id); err != nil {
		return err
	}
	return t.Transport.TimeoutNow(id, target, args, resp)
}

func (t *faultTransport) CloseStreams() {
	if c, ok := t.Transport.(interface{ CloseStreams() }); ok {
		c.CloseStreams()
	}
}

func (t *faultTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// Connect and Disconnect implement raft.WithPeers for the in-memory
// transport underneath; they are no-ops over TCP.
func (t *faultTransport) Connect(peer raft.ServerAddress, tr raft.Transport) {
	if p, ok := t.Transport.(raft.WithPeers); ok {
		if ft, ok := tr.(*faultTransport); ok {
			tr = ft.Transport
		}
		p.Connect(peer, tr)
	}
}

func (t *faultTransport) Disconnect(peer raft.ServerAddress) {
	if p, ok := t.Transport.(raft.WithPeers); ok {
		p.Disconnect(peer)
	}
}

func (t *faultTransport) DisconnectAll() {
	if p, ok := t.Transport.(raft.WithPeers); ok {
		p.DisconnectAll()
	}
}
