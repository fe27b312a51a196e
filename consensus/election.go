package consensus

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// LeaderState is what a node knows about leadership at one moment.
type LeaderState struct {
	// IsLeader reports whether this node is the leader.
	IsLeader bool
	// LeaderID and LeaderAddr name the leader, empty when none is known.
	LeaderID, LeaderAddr string
	// Term is the Raft term of this observation.
	Term uint64
}

func (n *Node) currentState() LeaderState {
	addr, id := n.raft.LeaderWithID()
	st := LeaderState{IsLeader: n.raft.State() == raft.Leader, LeaderID: string(id), LeaderAddr: string(addr), Term: n.raft.CurrentTerm()}
	if st.IsLeader {
		// raft switches to the leader state a moment before it records
		// itself as the leader.
		st.LeaderID, st.LeaderAddr = n.opts.ID, n.Addr()
	}
	return st
}

// IsLeader reports whether this node currently believes it is the leader.
// A deposed leader may believe so for up to one leader lease after losing
// its quorum; linearizable reads and writes check with the quorum instead of
// trusting this.
func (n *Node) IsLeader() bool { return n.started() && n.raft.State() == raft.Leader }

// Leader returns the id and address of the leader this node knows of, empty
// when none is known.
func (n *Node) Leader() (id, addr string) {
	if !n.started() {
		return "", ""
	}
	st := n.currentState()
	return st.LeaderID, st.LeaderAddr
}

type subscription struct{ ch chan LeaderState }

// Subscribe returns a channel that receives the current [LeaderState] at
// once and then every change (a state may repeat), for any number of subscribers (unlike
// hashicorp/raft's LeaderCh, which serves one). A slow subscriber never
// blocks the node: it skips intermediate states and always receives the
// latest. The channel is closed when ctx ends or the node closes; it is
// closed at once after Close, on a Node not made by [NewNode] and for a
// nil ctx, so a caller ranging over it never hangs.
func (n *Node) Subscribe(ctx context.Context) <-chan LeaderState {
	s := &subscription{ch: make(chan LeaderState, 1)}
	if n.usable(ctx) != nil {
		close(s.ch)
		return s.ch
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		close(s.ch)
		return s.ch
	}
	// The loop may not have processed the latest observation yet, so the
	// new subscriber gets a fresh state; the loop's broadcast may repeat it.
	s.ch <- n.currentState()
	n.subs[s] = struct{}{}
	n.mu.Unlock()
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.subs[s]; ok {
			delete(n.subs, s)
			close(s.ch)
		}
	})
	return s.ch
}

// leadershipLoop turns raft observations into LeaderState changes and
// delivers them to subscribers and the OnLeaderChange hook; on the leader
// it also runs the lease sweep. It exits on Close.
func (n *Node) leadershipLoop() {
	defer close(n.loopDone)
	raftUp := true
	defer func() {
		if raftUp {
			close(n.raftDown)
		}
	}()
	sweep := time.NewTicker(n.opts.LeaseSweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-sweep.C:
			// A failed sweep is retried at the next tick.
			n.runLeaseWork(func(ctx context.Context) { _, _ = n.sweepLeases(ctx) })
			continue
		case <-n.obsCh:
		}
		// Raft sets its state before it reports it, so the report read
		// last, or a later one, finds Shutdown.
		if raftUp && n.raft.State() == raft.Shutdown {
			raftUp = false
			close(n.raftDown)
		}
		n.mu.Lock()
		st := n.currentState() // under mu, so Subscribe's refresh cannot be overwritten by an older state
		if st == n.state {
			n.mu.Unlock()
			continue
		}
		changed := st.IsLeader != n.state.IsLeader || st.LeaderID != n.state.LeaderID
		n.state = st
		for s := range n.subs {
			select { // keep only the latest state
			case <-s.ch:
			default:
			}
			s.ch <- st
		}
		n.mu.Unlock()
		if changed {
			n.leaderChanges.Add(1)
		}
		if n.opts.OnLeaderChange != nil {
			n.opts.OnLeaderChange(st)
		}
		if st.IsLeader {
			// A new leader gives every lease a full TTL from now, before
			// anything else touches a lease (see Node.GrantLease).
			n.runLeaseWork(func(ctx context.Context) { _ = n.leaseBarrier(ctx) })
		}
	}
}

// runLeaseWork runs fn, a write of the leader's lease bookkeeping, bounded
// by a sweep interval (at least a second).
func (n *Node) runLeaseWork(fn func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), max(n.opts.LeaseSweepInterval, time.Second))
	defer cancel()
	fn(ctx)
}

// WhileLeader runs fn each time this node becomes leader, with a context
// that is cancelled the moment leadership is lost (or ctx ends), and waits
// for fn to return before watching for the next term. It returns when ctx
// ends (ctx.Err()), when the node closes ([ErrClosed]), or with fn's error
// if fn fails while leader. fn returning nil means "done for this term". A
// nil fn or ctx fails at once with [ErrInvalidArgument].
//
// Leadership is local knowledge: a deposed leader learns of its loss only
// after its leader lease; work that must not overlap with a new leader's
// should also use fencing (see [Node.AcquireLock]).
func (n *Node) WhileLeader(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: node %q: WhileLeader with a nil function", ErrInvalidArgument, n.opts.ID)
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	states := n.Subscribe(subCtx)
	var (
		cancel  context.CancelFunc
		result  chan error
		term    uint64
		running bool
	)
	halt := func() error {
		if !running {
			return nil
		}
		cancel()
		err := <-result
		running = false
		return err
	}
	for {
		var resCh chan error
		if running {
			resCh = result
		}
		select {
		case st, ok := <-states:
			if !ok {
				_ = halt()
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("%w: node %q", ErrClosed, n.opts.ID)
			}
			if running && (!st.IsLeader || st.Term != term) {
				_ = halt() // fn's error after losing leadership is the cancellation
			}
			if st.IsLeader && !running && st.Term != term {
				term = st.Term
				runCtx, c := context.WithCancel(ctx)
				cancel = c
				result = make(chan error, 1)
				running = true
				go func() { result <- fn(runCtx) }()
			}
		case err := <-resCh:
			running = false
			cancel()
			if err != nil && ctx.Err() == nil && n.IsLeader() {
				return err
			}
		}
	}
}
