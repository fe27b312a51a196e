package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ack is one acknowledged write of the drill.
type ack struct {
	key string
	rev uint64
	at  time.Time
}

// Guide: Fault Tolerance → Disaster Recovery (backups, RPO, RTO, drills).
// A drill: a writer writes without pause while backups are taken
// periodically; then every node's data directory is destroyed, a new
// cluster is started and the last backup restored. The writes lost (the
// RPO, in writes and in time) are exactly the acknowledged writes the last
// backup does not hold, those of a revision above its index, and the RTO
// is the time from the loss of the data to the first write the restored
// cluster accepts. Run with -v to see the figures.
func TestDR_DrillMeasuresRPOAndRTO(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	a, err := NewLocalCluster(ctx, ClusterOptions{DataDir: filepath.Join(dir, "a"), Node: Options{Timing: testTiming()}})
	require.NoError(t, err)

	var (
		mu   sync.Mutex
		acks []ack
	)
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			l := a.Leader()
			if l == nil {
				continue
			}
			key := fmt.Sprintf("w/%06d", i)
			kv, err := l.Put(ctx, key, []byte("v"))
			if err != nil {
				continue // not acknowledged: not counted
			}
			mu.Lock()
			acks = append(acks, ack{key: key, rev: kv.Revision, at: time.Now()})
			mu.Unlock()
		}
	}()

	// Back up every 150 ms, four times; keep the last backup, and go on
	// writing for a while after it, as a disaster never waits for one.
	var (
		last       []byte
		lastInfo   BackupInfo
		lastAt     time.Time
		ackedFirst int // writes acknowledged before the last backup began
	)
	tick := time.NewTicker(150 * time.Millisecond)
	for range 4 {
		<-tick.C
		l, err := a.WaitLeader(ctx)
		require.NoError(t, err)
		mu.Lock()
		before := len(acks)
		mu.Unlock()
		var buf bytes.Buffer
		info, err := l.Backup(ctx, &buf)
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrIndeterminate) {
			continue // a busy machine moved the leader: the next tick backs up
		}
		require.NoError(t, err)
		last, lastInfo, lastAt, ackedFirst = buf.Bytes(), info, time.Now(), before
	}
	<-tick.C
	tick.Stop()
	require.NotNil(t, last, "no backup succeeded")

	// The disaster: every node and every data directory lost.
	close(stop)
	<-writerDone
	require.NoError(t, a.Close(context.Background()))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "a")))
	lost := time.Now()
	_, err = os.Stat(filepath.Join(dir, "a"))
	require.True(t, os.IsNotExist(err), "the data is gone")

	// Recovery: a new cluster, the last backup restored, the first write.
	b, err := NewLocalCluster(ctx, ClusterOptions{DataDir: filepath.Join(dir, "b"), Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	eventually(t, ctx, "the backup restored", func() bool {
		l := b.Leader()
		if l == nil {
			return false
		}
		_, err := l.Restore(ctx, bytes.NewReader(last))
		require.NotErrorIs(t, err, ErrInvalidBackup)
		return err == nil
	})
	putOnLeader(t, ctx, b, "after/recovery", "ok")
	rto := time.Since(lost)

	l, err := b.WaitLeader(ctx)
	require.NoError(t, err)
	restored, err := l.List(ctx, "w/", Linearizable)
	require.NoError(t, err)
	have := map[string]bool{}
	for _, kv := range restored {
		have[kv.Key] = true
	}
	var missing, wantMissing []string
	var lastAck time.Time
	for i, w := range acks {
		if !have[w.key] {
			missing = append(missing, w.key)
		}
		if w.rev > lastInfo.Index {
			wantMissing = append(wantMissing, w.key)
		}
		if i < ackedFirst {
			assert.LessOrEqual(t, w.rev, lastInfo.Index, "%s was acknowledged before the backup began", w.key)
		}
		lastAck = w.at
	}
	assert.Equal(t, wantMissing, missing, "lost exactly the acknowledged writes after the last backup's index")
	assert.NotEmpty(t, missing, "the drill wrote after its last backup")
	assert.Len(t, restored, len(acks)-len(missing), "nothing unacknowledged came back")
	rpo := lastAck.Sub(lastAt)
	t.Logf("DR drill: %d writes acknowledged, last backup at index %d (%d bytes); RPO: %d acknowledged writes lost, the last %v of writes; RTO: %v from the loss of every data directory to the first write accepted",
		len(acks), lastInfo.Index, len(last), len(missing), rpo.Round(time.Millisecond), rto.Round(time.Millisecond))
}
