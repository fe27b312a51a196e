package consensus

import (
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Failure detector ([Timing.FastFailover]).
//
// hashicorp/raft's follower re-arms its heartbeat timer at a random point in
// [T, 2T) and campaigns only when that timer fires and the leader has been
// silent for T, so detection alone takes T to 3T after the last heartbeat.
// On two surviving voters it adds a second problem: the first follower to
// time out asks the other for a (pre-)vote, and the other, still believing
// in the dead leader, refuses ("we have a leader"); the first then waits a
// whole election timeout, and when both time out together they split the
// vote and both wait one.
//
// The detector replaces the random timer with a deterministic schedule. Each
// voting follower watches raft's last-contact time and, once the leader has
// been silent for T + rank × T/4, makes raft re-check at once: rank is the
// node's place among the voters other than the leader it knew, ordered by
// id. The step, T/4, exceeds the spread between the followers' last
// heartbeats (the leader sends one every T/10 to T/5), so no two followers
// act at the same moment and their order follows the ranks. The follower
// of rank 0
// drops its belief in the leader and campaigns; its pre-vote is refused by
// the others, which still believe in the leader. The follower of rank 1
// acts a quarter timeout later and is granted the pre-vote and the vote of
// rank 0, which no longer has a leader; with more voters, rank q−1 (q the
// quorum) is the first to collect a quorum. Failover thus takes about
// T + (q−1) × T/4 after the last heartbeat, without a split vote.
//
// Raft has no call to "campaign now"; the detector uses ReloadConfig. While
// the node follows a live leader its raft heartbeat timeout is a backstop of
// detectorBackstop × T (so raft's own random timer does not pre-empt the
// schedule, yet still elects a leader should the detector ever stall); the
// detector lowers it back to T to trigger the check, since raft fires a
// follower's heartbeat timer immediately when the timeout shrinks, and
// keeps it at T while the node is a candidate or the leader (the leader
// sends heartbeats every T/10). Raft requires ElectionTimeout ≥
// HeartbeatTimeout ≥ LeaderLeaseTimeout, and the lease is not reloadable,
// so the timers cannot drop below the configured ones for the election
// itself: a candidate whose pre-vote was refused still waits a random
// [ElectionTimeout, 2×ElectionTimeout) before it retries. That wait remains
// when the follower due to win has a shorter log than one that acted before
// it (the leader died with entries in flight): the longer log refuses the
// shorter, and the election completes on its owner's retry.
const (
	detectorBackstop = 3 // follower heartbeat timeout while armed, in multiples of T
	detectorTicks    = 8 // checks per heartbeat timeout
	detectorSteps    = 4 // stagger between ranks: T / detectorSteps
)

// detectedRaft is the part of *raft.Raft the detector reads and drives.
type detectedRaft interface {
	State() raft.RaftState
	LastContact() time.Time
	LeaderWithID() (raft.ServerAddress, raft.ServerID)
	GetConfiguration() raft.ConfigurationFuture
	ReloadableConfig() raft.ReloadableConfig
	ReloadConfig(raft.ReloadableConfig) error
}

type detector struct {
	n           *Node                 // for its id, logger and trigger count
	r           detectedRaft          // n's raft
	hb          time.Duration         // T, the configured heartbeat timeout
	fast, armed raft.ReloadableConfig // raft's timers when triggered or leading, and while following
	isArmed     bool                  // raft runs with the armed timers
	since       time.Time             // when the detector last armed: a floor for the last contact
}

// detectorRaftTimers returns the heartbeat and election timeouts raft
// starts with: the armed (backstop) values when the detector runs.
func detectorRaftTimers(t Timing) (heartbeat, election time.Duration) {
	if !t.FastFailover {
		return t.HeartbeatTimeout, t.ElectionTimeout
	}
	hb := detectorBackstop * t.HeartbeatTimeout
	return hb, max(t.ElectionTimeout, hb)
}

func newDetector(n *Node, r detectedRaft, now time.Time) *detector {
	t := n.opts.Timing
	d := &detector{n: n, r: r, hb: t.HeartbeatTimeout, isArmed: true, since: now}
	d.armed = r.ReloadableConfig()
	d.fast = d.armed
	d.fast.HeartbeatTimeout, d.fast.ElectionTimeout = t.HeartbeatTimeout, t.ElectionTimeout
	return d
}

// detectLoop runs the detector until Close.
func (n *Node) detectLoop(d *detector) {
	defer close(n.detectDone)
	timer := time.NewTimer(d.hb / detectorTicks)
	defer timer.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-timer.C:
		}
		timer.Reset(d.check(time.Now()))
	}
}

// check looks at raft once and returns how long to wait before the next
// look.
func (d *detector) check(now time.Time) time.Duration {
	tick := d.hb / detectorTicks
	r := d.r
	switch r.State() {
	case raft.Leader, raft.Candidate:
		d.setArmed(false, now)
		return tick
	case raft.Follower:
	default: // shut down
		return tick
	}
	lastContact := r.LastContact()
	_, leader := r.LeaderWithID()
	if !d.isArmed {
		// Triggered: raft runs on plain timers until a leader is heard.
		if leader != "" && now.Sub(lastContact) < d.hb {
			d.setArmed(true, now)
		}
		return tick
	}
	if lastContact.Before(d.since) {
		lastContact = d.since // a node that never heard from a leader counts from arming
	}
	silence := now.Sub(lastContact)
	if silence < d.hb/2 { // (or <=: at hb/2 the wait below is still above a tick)
		return tick
	}
	// The configuration is read afresh: it may change during a silence
	// (bootstrap, a promotion), and reading it is a cheap copy.
	rank, voter := d.rankOf(leader)
	if !voter {
		return tick // a non-voter never campaigns
	}
	if wait := lastContact.Add(d.hb + time.Duration(rank)*d.hb/detectorSteps).Sub(now); wait > 0 {
		return min(wait, tick)
	}
	d.n.detectorTriggers.Add(1)
	d.setArmed(false, now)
	return tick
}

// rankOf returns this node's place among the voters other than leader,
// ordered by id, and whether this node is one of them.
func (d *detector) rankOf(leader raft.ServerID) (int, bool) {
	f := d.r.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	self := raft.ServerID(d.n.opts.ID)
	var ids []raft.ServerID
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != leader {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	i := slices.Index(ids, self)
	return i, i >= 0
}

// setArmed switches raft between the armed (backstop) timers and the plain
// ones. Lowering the heartbeat timeout makes a follower re-check its leader
// at once and a leader resend heartbeats at the shorter interval.
func (d *detector) setArmed(armed bool, now time.Time) {
	if d.isArmed == armed {
		return
	}
	cfg := d.fast
	if armed {
		cfg = d.armed
		d.since = now
	}
	if err := d.r.ReloadConfig(cfg); err != nil {
		d.n.opts.Logger.Error("consensus: failure detector: reload raft timers", "error", err)
		return
	}
	d.isArmed = armed
}
