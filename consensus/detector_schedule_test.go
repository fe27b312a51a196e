package consensus

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptedRaft stands in for the raft the detector watches: the test sets
// what raft reports and reads back every timer reload the detector makes.
type scriptedRaft struct {
	mu        sync.Mutex
	state     raft.RaftState
	contact   time.Time
	leader    raft.ServerID
	servers   []raft.Server
	confErr   error
	reloadErr error
	current   raft.ReloadableConfig
	reloads   []raft.ReloadableConfig
	reloadAt  []time.Time
}

func (s *scriptedRaft) State() raft.RaftState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *scriptedRaft) LastContact() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contact
}

func (s *scriptedRaft) LeaderWithID() (raft.ServerAddress, raft.ServerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return raft.ServerAddress(s.leader), s.leader
}

func (s *scriptedRaft) GetConfiguration() raft.ConfigurationFuture {
	s.mu.Lock()
	defer s.mu.Unlock()
	return scriptedConfig{raft.Configuration{Servers: s.servers}, s.confErr}
}

func (s *scriptedRaft) ReloadableConfig() raft.ReloadableConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *scriptedRaft) ReloadConfig(c raft.ReloadableConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reloadErr != nil {
		return s.reloadErr
	}
	s.current = c
	s.reloads = append(s.reloads, c)
	s.reloadAt = append(s.reloadAt, time.Now())
	return nil
}

func (s *scriptedRaft) reloaded() []raft.ReloadableConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]raft.ReloadableConfig(nil), s.reloads...)
}

type scriptedConfig struct {
	c   raft.Configuration
	err error
}

func (c scriptedConfig) Error() error                      { return c.err }
func (c scriptedConfig) Index() uint64                     { return 0 }
func (c scriptedConfig) Configuration() raft.Configuration { return c.c }

const (
	schedHB       = 80 * time.Millisecond  // T
	schedElection = 200 * time.Millisecond // the configured election timeout
	schedTick     = schedHB / detectorTicks
	schedStep     = schedHB / detectorSteps
)

// The timers raft runs with while the detector is armed, and the plain
// ones it switches to when it acts or leads.
var (
	schedArmed = raft.ReloadableConfig{TrailingLogs: 7, SnapshotInterval: time.Minute, SnapshotThreshold: 9, HeartbeatTimeout: 3 * schedHB, ElectionTimeout: 3 * schedHB}
	schedFast  = raft.ReloadableConfig{TrailingLogs: 7, SnapshotInterval: time.Minute, SnapshotThreshold: 9, HeartbeatTimeout: schedHB, ElectionTimeout: schedElection}
)

// scriptedDetector returns a detector for node self among voters a–d
// (and non-voter e), following leader a, armed at since, with the last
// contact at contact.
func scriptedDetector(t *testing.T, self string, since, contact time.Time) (*detector, *scriptedRaft, *Node) {
	t.Helper()
	var servers []raft.Server
	for _, id := range []raft.ServerID{"d", "b", "a", "c"} { // out of order: ranks sort by id
		servers = append(servers, raft.Server{ID: id, Address: raft.ServerAddress(id), Suffrage: raft.Voter})
	}
	servers = append(servers, raft.Server{ID: "e", Address: "e", Suffrage: raft.Nonvoter})
	r := &scriptedRaft{state: raft.Follower, contact: contact, leader: "a", servers: servers, current: schedArmed}
	n := &Node{opts: Options{ID: self, Timing: Timing{HeartbeatTimeout: schedHB, ElectionTimeout: schedElection, FastFailover: true}, Logger: hclog.NewNullLogger()}}
	d := newDetector(n, r, since)
	return d, r, n
}

// A voter acts once the leader has been silent for T + rank × T/4, rank
// being its place by id among the voters other than the leader, and not a
// nanosecond earlier; until then it looks again no later than the moment
// it is due.
func TestDetector_ActsOnItsRanksSchedule(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lc := since.Add(time.Second)
	for self, rank := range map[string]int{"b": 0, "c": 1, "d": 2} {
		t.Run(self, func(t *testing.T) {
			d, r, n := scriptedDetector(t, self, since, lc)
			due := lc.Add(schedHB + time.Duration(rank)*schedStep)
			assert.Equal(t, schedTick, d.check(lc.Add(schedHB/2-time.Nanosecond)), "a short silence: the next tick")
			assert.Equal(t, schedTick, d.check(due.Add(-schedTick-time.Nanosecond)), "more than a tick before it is due")
			assert.Equal(t, 5*time.Millisecond, d.check(due.Add(-5*time.Millisecond)), "it wakes when it is due")
			assert.Equal(t, time.Nanosecond, d.check(due.Add(-time.Nanosecond)))
			assert.Empty(t, r.reloaded(), "nothing done before it is due")
			assert.Zero(t, n.detectorTriggers.Load())

			assert.Equal(t, schedTick, d.check(due))
			assert.Equal(t, []raft.ReloadableConfig{schedFast}, r.reloaded(), "acting lowers raft's timers to the configured ones")
			assert.Equal(t, uint64(1), n.detectorTriggers.Load())

			// Triggered, it leaves raft alone until a leader is heard.
			assert.Equal(t, schedTick, d.check(due.Add(time.Second)))
			assert.Len(t, r.reloaded(), 1)
			assert.Equal(t, uint64(1), n.detectorTriggers.Load(), "acting once per silence")
		})
	}
}

// Before any contact with a leader, the silence counts from arming.
func TestDetector_SilenceCountsFromArming(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, r, _ := scriptedDetector(t, "c", since, time.Time{}) // rank 1, no contact ever
	due := since.Add(schedHB + schedStep)
	assert.Equal(t, 3*time.Millisecond, d.check(due.Add(-3*time.Millisecond)))
	assert.Empty(t, r.reloaded())
	d.check(due)
	assert.Equal(t, []raft.ReloadableConfig{schedFast}, r.reloaded())
}

// After a trigger the detector re-arms once a leader is heard within T,
// and from then counts any silence from the re-arming at the earliest.
func TestDetector_RearmsWhenALeaderIsHeard(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, r, n := scriptedDetector(t, "b", since, since) // rank 0
	now := since.Add(schedHB)
	d.check(now) // acts
	require.Len(t, r.reloaded(), 1)

	r.leader = ""
	r.contact = now
	d.check(now.Add(time.Millisecond))
	assert.Len(t, r.reloaded(), 1, "contact without a known leader does not re-arm")

	r.leader = "c"
	assert.Equal(t, schedTick, d.check(now.Add(schedHB)), "contact exactly T ago is too old")
	assert.Len(t, r.reloaded(), 1)

	rearm := now.Add(schedHB - time.Nanosecond)
	assert.Equal(t, schedTick, d.check(rearm))
	assert.Equal(t, []raft.ReloadableConfig{schedFast, schedArmed}, r.reloaded(), "re-armed: the backstop timers again")

	// The new leader is c, so b now has rank 1 among a, b, d. Its silence
	// counts from the re-arming, not from the older contact.
	due := rearm.Add(schedHB + schedStep)
	assert.Equal(t, 4*time.Millisecond, d.check(due.Add(-4*time.Millisecond)))
	assert.Len(t, r.reloaded(), 2)
	d.check(due)
	assert.Len(t, r.reloaded(), 3)
	assert.Equal(t, uint64(2), n.detectorTriggers.Load())
}

// A leader or candidate runs on the plain timers (the leader sends
// heartbeats every T/10 of them); a node raft has shut down is left alone.
func TestDetector_LeaderAndCandidateRunOnPlainTimers(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, st := range []raft.RaftState{raft.Leader, raft.Candidate} {
		d, r, n := scriptedDetector(t, "b", since, since)
		r.state = st
		assert.Equal(t, schedTick, d.check(since.Add(time.Millisecond)), st.String())
		assert.Equal(t, schedTick, d.check(since.Add(time.Hour)), st.String())
		assert.Equal(t, []raft.ReloadableConfig{schedFast}, r.reloaded(), "%s: lowered once", st)
		assert.Zero(t, n.detectorTriggers.Load(), "%s: not a trigger", st)
	}
	d, r, n := scriptedDetector(t, "b", since, since)
	r.state = raft.Shutdown
	assert.Equal(t, schedTick, d.check(since.Add(time.Hour)))
	assert.Empty(t, r.reloaded(), "shut down")
	assert.Zero(t, n.detectorTriggers.Load())
}

// A node that is not a voter, or cannot read the configuration, never
// acts.
func TestDetector_OnlyVotersAct(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		self    string
		confErr error
	}{
		"non-voter":                {self: "e"},
		"not in the configuration": {self: "z"},
		"the leader it knew":       {self: "a"},
		"configuration error":      {self: "b", confErr: errors.New("raft is shut down")},
	} {
		d, r, n := scriptedDetector(t, tc.self, since, since)
		r.confErr = tc.confErr
		assert.Equal(t, schedTick, d.check(since.Add(time.Hour)), name)
		assert.Empty(t, r.reloaded(), name)
		assert.Zero(t, n.detectorTriggers.Load(), name)
	}
}

// A reload raft refuses is logged and tried again at the next check.
func TestDetector_RetriesARefusedReload(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, r, n := scriptedDetector(t, "b", since, since)
	var logs bytes.Buffer
	n.opts.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs})
	r.reloadErr = errors.New("refused")
	due := since.Add(schedHB)
	d.check(due)
	assert.Empty(t, r.reloaded())
	assert.Contains(t, logs.String(), "reload raft timers")
	assert.Contains(t, logs.String(), "refused")
	r.reloadErr = nil
	d.check(due.Add(time.Millisecond))
	assert.Equal(t, []raft.ReloadableConfig{schedFast}, r.reloaded(), "the trigger is retried")
}

// Raft starts on the backstop timers when the detector runs, and on the
// configured ones without it.
func TestDetectorRaftTimers(t *testing.T) {
	for _, tc := range []struct {
		t            Timing
		hb, election time.Duration
	}{
		{Timing{HeartbeatTimeout: schedHB, ElectionTimeout: schedElection}, schedHB, schedElection},
		{Timing{HeartbeatTimeout: schedHB, ElectionTimeout: schedElection, FastFailover: true}, 3 * schedHB, 3 * schedHB},
		{Timing{HeartbeatTimeout: schedHB, ElectionTimeout: time.Second, FastFailover: true}, 3 * schedHB, time.Second},
	} {
		hb, el := detectorRaftTimers(tc.t)
		assert.Equal(t, tc.hb, hb, "%+v", tc.t)
		assert.Equal(t, tc.election, el, "%+v", tc.t)
	}
}

// The loop looks every T/8 and wakes exactly when its rank is due: rank 1
// acts T + T/4 after the last contact, then leaves raft alone.
func TestDetector_LoopWakesWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		lc := start.Add(3 * time.Millisecond) // off the tick grid
		_, r, n := scriptedDetector(t, "c", start, lc)
		n.done, n.detectDone = make(chan struct{}), make(chan struct{})
		go n.detectLoop(newDetector(n, r, start))
		time.Sleep(time.Second)
		synctest.Wait()
		r.mu.Lock()
		at := append([]time.Time(nil), r.reloadAt...)
		r.mu.Unlock()
		assert.Equal(t, []time.Duration{lc.Add(schedHB + schedStep).Sub(start)}, sinceEach(start, at))
		close(n.done)
		<-n.detectDone
	})
}

func sinceEach(start time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, ts := range ts {
		out[i] = ts.Sub(start)
	}
	return out
}
