package consensus

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTiming_Minimums(t *testing.T) {
	least := Timing{HeartbeatTimeout: 5 * time.Millisecond, ElectionTimeout: 5 * time.Millisecond,
		LeaderLeaseTimeout: 5 * time.Millisecond, CommitTimeout: time.Millisecond}
	require.NoError(t, least.validate(), "every timer at its minimum")
	for name, below := range map[string]func(*Timing){
		"heartbeat": func(t *Timing) { t.HeartbeatTimeout-- },
		"election":  func(t *Timing) { t.ElectionTimeout-- },
		"lease":     func(t *Timing) { t.LeaderLeaseTimeout-- },
		"commit":    func(t *Timing) { t.CommitTimeout-- },
	} {
		tm := least
		below(&tm)
		assert.ErrorIs(t, tm.validate(), ErrInvalidConfig, name)
	}
}

func TestOptions_Defaults(t *testing.T) {
	var o Options
	o.withDefaults()
	assert.Equal(t, DefaultTiming(), o.Timing)
	assert.Equal(t, DefaultMaxValueSize, o.MaxValueSize)
	assert.Equal(t, DefaultMaxKeySize, o.MaxKeySize)
	assert.Equal(t, 10*time.Second, o.ApplyTimeout)
	assert.Equal(t, DefaultWatchHistory, o.WatchHistory)
	assert.Equal(t, 500*time.Millisecond, o.LeaseSweepInterval)
	assert.Equal(t, 3*o.Timing.HeartbeatTimeout, o.MinLeaseTTL)
	require.NotNil(t, o.Logger)
	require.NotNil(t, o.Now)

	c := o.raftConfig()
	def := raft.DefaultConfig()
	assert.Equal(t, def.SnapshotThreshold, c.SnapshotThreshold, "zero means raft's")
	assert.Equal(t, def.SnapshotInterval, c.SnapshotInterval)
	assert.Equal(t, def.TrailingLogs, c.TrailingLogs)
	o.SnapshotThreshold, o.SnapshotInterval, o.TrailingLogs = 5, time.Minute, 7
	c = o.raftConfig()
	assert.Equal(t, uint64(5), c.SnapshotThreshold)
	assert.Equal(t, time.Minute, c.SnapshotInterval)
	assert.Equal(t, uint64(7), c.TrailingLogs)
}
