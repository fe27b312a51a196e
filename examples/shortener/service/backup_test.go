package service

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An online backup, taken while writes go on and restored into a fresh
// directory, holds every write acknowledged before it began.
func TestBackupWhileWritingRestoresEveryAcknowledgedWrite(t *testing.T) {
	st, err := OpenStorage(t.TempDir(), StorageOptions{Shards: 3})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	var acked atomic.Int64 // keys u:k0 .. u:k(acked-1) are committed
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := st.Create(ctx, fmt.Sprintf("u:k%d", i), []byte(fmt.Sprint(i))); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	for acked.Load() < 300 {
		time.Sleep(time.Millisecond)
	}
	before := acked.Load()
	var backup bytes.Buffer
	_, err = st.Backup(ctx, &backup)
	require.NoError(t, err)
	// The writer went on during the backup, or at least is going on now.
	deadline := time.Now().Add(30 * time.Second)
	for acked.Load() < before+50 {
		require.True(t, time.Now().Before(deadline), "writes stalled")
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()

	dir := filepath.Join(t.TempDir(), "restored")
	require.NoError(t, RestoreStorage(ctx, bytes.NewReader(backup.Bytes()), dir))
	restored, err := OpenStorage(dir, StorageOptions{Shards: 3})
	require.NoError(t, err, "the restored directory opens with the backup's shard count")
	defer restored.Close()
	assert.Equal(t, st.ID(), restored.ID())
	for i := range before {
		v, err := restored.Router().Get(ctx, fmt.Sprintf("u:k%d", i))
		require.NoError(t, err, "key %d, acknowledged before the backup, is missing", i)
		require.Equal(t, fmt.Sprint(i), string(v))
	}
}

// A truncated or corrupted backup is refused before the data directory is
// touched; so is a directory that holds files.
func TestRestoreRefusesBadBackups(t *testing.T) {
	st, err := OpenStorage(t.TempDir(), StorageOptions{Shards: 2})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	for i := range 50 {
		_, _, err := st.Create(ctx, fmt.Sprintf("u:k%d", i), []byte("v"))
		require.NoError(t, err)
	}
	var buf bytes.Buffer
	_, err = st.Backup(ctx, &buf)
	require.NoError(t, err)
	good := buf.Bytes()
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	for name, data := range map[string][]byte{
		"empty":                nil,
		"truncated header":     good[:20],
		"truncated in shard 0": good[:len(good)/3],
		"truncated in shard 1": good[:len(good)-100],
		"last byte missing":    good[:len(good)-1],
		"corrupted header":     flip(len(backupMagic) + 10),
		"corrupted shard 0":    flip(len(good) / 4),
		"corrupted shard 1":    flip(len(good) - 5000),
		"trailing data":        append(bytes.Clone(good), 0),
		"not a backup":         append([]byte("PK\x03\x04"), good[4:]...),
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "data")
			err := RestoreStorage(ctx, bytes.NewReader(data), dir)
			require.ErrorIs(t, err, ErrBadBackup)
			entries, err := os.ReadDir(parent)
			require.NoError(t, err)
			assert.Empty(t, entries, "a refused restore left %v", entries)
		})
	}
	t.Run("directory with files", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600))
		err := RestoreStorage(ctx, bytes.NewReader(good), dir)
		require.ErrorIs(t, err, ErrStorage)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 1)
	})
	t.Run("empty directory", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, RestoreStorage(ctx, bytes.NewReader(good), dir))
		s, err := OpenStorage(dir, StorageOptions{Shards: 2})
		require.NoError(t, err)
		defer s.Close()
		v, err := s.Router().Get(ctx, "u:k49")
		require.NoError(t, err)
		assert.Equal(t, "v", string(v))
	})
}

// The backup endpoint streams a backup to an admin, audit-logged, that
// restores to the links the service serves.
func TestBackupEndpoint(t *testing.T) {
	var log logBuffer
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 2, Service: Config{Tokens: testTokens, Logger: jsonLogger(&log)}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	code := cl.mustCreate("https://example.com/backed-up").Code

	assert.Equal(t, http.StatusForbidden, cl.do("GET", "/api/v1/admin/backup", "", nil, "Authorization", "Bearer "+tokenFor(t, "alice", "user")).status)
	r := cl.do("GET", "/api/v1/admin/backup", "", nil, "Authorization", "Bearer "+adminToken(t))
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	dir := filepath.Join(t.TempDir(), "restored")
	require.NoError(t, RestoreStorage(context.Background(), io.NopCloser(bytes.NewReader(r.body)), dir))
	s, err := OpenStorage(dir, StorageOptions{})
	require.NoError(t, err)
	defer s.Close()
	v, err := s.Router().Get(context.Background(), "u:"+code)
	require.NoError(t, err)
	assert.Contains(t, string(v), "https://example.com/backed-up")

	audits := log.audits(t)
	require.Len(t, audits, 1)
	assert.Equal(t, "backup", audits[0]["action"])
	assert.Equal(t, "written", audits[0]["outcome"])
	assert.Equal(t, float64(len(r.body)), audits[0]["bytes"])
	assert.Equal(t, r.header.Get("X-Request-ID"), audits[0]["request_id"])
}
