package consensus

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fillAndBackup writes keys k0..k(n-1) on c's leader and returns a backup
// taken after them.
func fillAndBackup(t *testing.T, ctx context.Context, c *LocalCluster, n int) ([]byte, BackupInfo, KV) {
	t.Helper()
	var last KV
	for i := range n {
		last = putOnLeader(t, ctx, c, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	var buf bytes.Buffer
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	info, err := leader.Backup(ctx, &buf)
	require.NoError(t, err)
	return buf.Bytes(), info, last
}

// Guide: Fault Tolerance → Disaster Recovery (backup and restore). A
// backup of one cluster restored into a new one: every node of the new
// cluster serves the data, the new cluster carries the old one's id, and
// its revisions go on growing past the backup's.
func TestBackup_RestoreIntoNewCluster(t *testing.T) {
	ctx := testCtx(t)
	a := newCluster(t, ClusterOptions{})
	backup, info, last := fillAndBackup(t, ctx, a, 20)
	al, err := a.WaitLeader(ctx)
	require.NoError(t, err)
	assert.Equal(t, backupFormat, info.Format)
	assert.Equal(t, 1, info.Version)
	assert.Equal(t, al.ClusterID(), info.ClusterID)
	assert.NotEmpty(t, info.ClusterID)
	assert.GreaterOrEqual(t, info.Index, last.Revision, "the backup holds every acknowledged write")
	assert.Equal(t, int64(len(backup)-bytes.IndexByte(backup, '\n')-1), info.Size)

	b := newCluster(t, ClusterOptions{})
	bl, err := b.WaitLeader(ctx)
	require.NoError(t, err)
	assert.Empty(t, bl.ClusterID(), "a new cluster has no id until its first backup")
	for _, n := range b.Nodes() {
		require.NoError(t, bl.SetAPIAddr(ctx, n.ID(), "api-of-"+n.ID()))
	}
	var got BackupInfo
	eventually(t, ctx, "the backup restored on the leader", func() bool {
		// A busy machine may move the leadership meanwhile: restore on the
		// new leader, as an operator would.
		l := b.Leader()
		if l == nil {
			return false
		}
		got, err = l.Restore(ctx, bytes.NewReader(backup))
		require.NotErrorIs(t, err, ErrInvalidBackup)
		return err == nil
	})
	assert.Equal(t, info, got)
	for _, n := range b.Nodes() {
		for i := range 20 {
			waitValue(t, ctx, n, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
		}
		eventually(t, ctx, n.ID()+" takes the cluster id", func() bool { return n.ClusterID() == info.ClusterID })
		for _, m := range b.Nodes() {
			assert.Equal(t, "api-of-"+m.ID(), n.APIAddr(m.ID()), "%s keeps the cluster's own API addresses, which a backup does not carry", n.ID())
		}
	}
	kv := putOnLeader(t, ctx, b, "after", "x")
	assert.Greater(t, kv.Revision, info.Index, "revisions keep growing past the backup")
	old, err := b.Nodes()[0].Read(ctx, "k19", Stale)
	require.NoError(t, err)
	assert.Equal(t, last.Revision, old.Revision, "a restored key keeps its revision")
}

func TestBackup_OnFollowerNamesLeader(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, ClusterOptions{})
	f := followerOf(t, c)
	_, err := f.Backup(ctx, &bytes.Buffer{})
	assert.ErrorIs(t, err, ErrNotLeader)
	_, err = f.Backup(ctx, nil)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

// A truncated, corrupted, foreign or other-cluster backup is refused with
// an error naming the problem, and the cluster is left as it was.
func TestRestore_RefusesBadBackups(t *testing.T) {
	ctx := testCtx(t)
	a := newCluster(t, ClusterOptions{})
	backup, _, _ := fillAndBackup(t, ctx, a, 5)
	nl := bytes.IndexByte(backup, '\n')

	target := newCluster(t, ClusterOptions{})
	_, _, _ = fillAndBackup(t, ctx, target, 1) // names the target cluster
	tl, err := target.WaitLeader(ctx)
	require.NoError(t, err)
	targetID := tl.ClusterID()

	flip := func(i int) []byte {
		b := bytes.Clone(backup)
		b[i] ^= 0x01
		return b
	}
	header := func(from, to string) []byte {
		return []byte(strings.Replace(string(backup), from, to, 1))
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":                  {nil, "empty file"},
		"not a backup":           {[]byte("hello\nworld"), "malformed header"},
		"no header line":         {bytes.Repeat([]byte("x"), 8<<10), "no header line"},
		"truncated in header":    {backup[:nl/2], "truncated in its header"},
		"truncated in payload":   {backup[:nl+1+(len(backup)-nl)/2], "truncated"},
		"truncated at last byte": {backup[:len(backup)-1], "truncated"},
		"trailing data":          {append(bytes.Clone(backup), 'x'), "data after"},
		"corrupted payload":      {flip(nl + 10), "checksum mismatch"},
		"corrupted last byte":    {flip(len(backup) - 2), "checksum mismatch"},
		"other format":           {header(backupFormat, "etcd-snapshot"), `format "etcd-snapshot"`},
		"other version":          {header(`"version":1`, `"version":2`), "format version 2"},
		"other cluster":          {backup, "this cluster is " + targetID},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			leader, err := target.WaitLeader(ctx)
			require.NoError(t, err)
			_, err = leader.Restore(ctx, bytes.NewReader(tc.data))
			require.ErrorIs(t, err, ErrInvalidBackup)
			assert.ErrorContains(t, err, tc.want)
			// Nothing was restored: the cluster keeps its keys and its id,
			// and none of the backup's keys arrived. (Its log may still
			// grow: the leader's lease sweep writes once per term.)
			kv, err := leader.Read(ctx, "k0", Stale)
			require.NoError(t, err)
			assert.Equal(t, "v0", string(kv.Value))
			_, err = leader.Read(ctx, "k4", Stale)
			assert.ErrorIs(t, err, ErrKeyNotFound, "no part of the backup arrived")
			assert.Equal(t, targetID, leader.ClusterID())
		})
	}
}

// The admin API takes and restores backups; only an admin may, and a
// follower forwards both to the leader.
func TestHandler_BackupAndRestore(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{Auth: testAuth(t)})
	ctx := testCtx(t)
	putOnLeader(t, ctx, a.c, "app/x", "1")
	f := followerOf(t, a.c).ID()
	url := a.servers[f].URL

	code, _, body := send(t, a.client, "GET", url+"/v1/backup", "Bearer "+writerToken, "")
	assert.Equal(t, http.StatusForbidden, code, body)
	code, hdr, backup := send(t, a.client, "GET", url+"/v1/backup", "Bearer "+adminToken, "")
	require.Equal(t, http.StatusOK, code, backup)
	assert.Equal(t, "application/octet-stream", hdr.Get("Content-Type"))
	info, _, err := readBackup(strings.NewReader(backup))
	require.NoError(t, err)
	assert.NotEmpty(t, info.ClusterID)

	putOnLeader(t, ctx, a.c, "app/x", "2")
	code, _, body = send(t, a.client, "POST", url+"/v1/restore", "Bearer "+readerToken, backup)
	assert.Equal(t, http.StatusForbidden, code, body)
	code, _, body = send(t, a.client, "POST", url+"/v1/restore", "Bearer "+adminToken, backup[:len(backup)-3])
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "truncated")
	code, _, body = send(t, a.client, "POST", url+"/v1/restore", "Bearer "+adminToken, backup)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, info.SHA256)
	eventually(t, ctx, "the restored value on every node", func() bool {
		for _, n := range a.c.Nodes() {
			kv, err := n.Read(ctx, "app/x", Stale)
			if err != nil || string(kv.Value) != "1" {
				return false
			}
		}
		return true
	})
	// The nodes keep their API addresses: the follower still forwards.
	code, _, body = send(t, a.client, "PUT", url+"/v1/kv/app/y", "Bearer "+writerToken, `{"value":"after"}`)
	assert.Equal(t, http.StatusOK, code, body)
}

// A linearizable read right after a restore answers at once, even when
// one ran before the restore in the same term: the leader commits a fresh
// no-op before it compares the restored state's index with Raft's.
func TestRestore_ReadAfterRestoreAnswers(t *testing.T) {
	ctx := testCtx(t)
	backup, _, _ := fillAndBackup(t, ctx, newCluster(t, ClusterOptions{Nodes: 1}), 2)
	b := newCluster(t, ClusterOptions{Nodes: 1})
	leader, err := b.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = leader.Get(ctx, "k0")
	require.ErrorIs(t, err, ErrKeyNotFound, "a linearizable read before the restore")
	_, err = leader.Restore(ctx, bytes.NewReader(backup))
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second) // the read's own bound, far above its need
	defer cancel()
	kv, err := leader.Get(rctx, "k0")
	require.NoError(t, err)
	assert.Equal(t, "v0", string(kv.Value))
}
