package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// gateWriter holds the backup's first database write until release is
// closed, so a test knows writes went on while the backup's read
// transaction was open.
type gateWriter struct {
	buf     bytes.Buffer
	writes  int
	started chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.writes++
	if g.writes == 2 { // the first database bytes: the transaction is open
		close(g.started)
		<-g.release
	}
	return g.buf.Write(p)
}

// TestBackupBolt_WhileWriting backs up a node's database while a writer
// goes on committing, restores it into a fresh directory, and finds every
// write acknowledged before the backup began — and none committed after
// its transaction opened.
func TestBackupBolt_WhileWriting(t *testing.T) {
	// A large initial mmap: a writer that grows the mmap waits for open read
	// transactions, which the gate below holds open.
	db, err := bolt.Open(filepath.Join(t.TempDir(), "node.db"), 0o600, &bolt.Options{InitialMmapSize: 64 << 20})
	require.NoError(t, err)
	defer db.Close()
	store, err := NewBoltStore(db, "records")
	require.NoError(t, err)
	rec := func(i int) Record {
		return Record{Siblings: []Sibling{{Value: []byte("v" + strconv.Itoa(i)), Dot: Dot{"n1", uint64(i + 1)}}}, Clock: VersionVector{"n1": uint64(i + 1)}}
	}

	var acked atomic.Int64 // keys 0 .. acked-1 are committed
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
			if err := store.Put(fmt.Sprintf("k%06d", i), rec(i)); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	for acked.Load() < 200 { // a database with something in it
		time.Sleep(time.Millisecond)
	}

	g := &gateWriter{started: make(chan struct{}), release: make(chan struct{})}
	before := acked.Load()
	done := make(chan error, 1)
	go func() { _, err := BackupBolt(context.Background(), db, g); done <- err }()
	<-g.started
	during := acked.Load()
	deadline := time.Now().Add(30 * time.Second)
	for acked.Load() < during+50 {
		require.True(t, time.Now().Before(deadline), "writes stalled while a backup was open")
		time.Sleep(time.Millisecond)
	}
	after := acked.Load() // committed after the transaction opened
	close(g.release)
	require.NoError(t, <-done)
	close(stop)
	wg.Wait()

	path := filepath.Join(t.TempDir(), "restored", "node.db")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
	require.NoError(t, RestoreBolt(context.Background(), bytes.NewReader(g.buf.Bytes()), path))
	rdb, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer rdb.Close()
	restored, err := NewBoltStore(rdb, "records")
	require.NoError(t, err)
	for i := range before {
		got, ok, err := restored.Get(fmt.Sprintf("k%06d", i))
		require.NoError(t, err)
		require.True(t, ok, "key %d, acknowledged before the backup began, is missing", i)
		require.Equal(t, rec(int(i)), got)
	}
	// Put(during) may have committed before the transaction opened and been
	// acknowledged only after; every later Put began after the load above.
	for i := during + 1; i < after; i++ {
		_, ok, err := restored.Get(fmt.Sprintf("k%06d", i))
		require.NoError(t, err)
		require.False(t, ok, "key %d, committed after the backup's transaction opened, is in it", i)
	}
}

// TestRestoreBolt_RefusesBadBackups: a truncated, corrupted or foreign
// file is refused, naming the problem, and nothing appears at the path.
func TestRestoreBolt_RefusesBadBackups(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "node.db"), 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	store, err := NewBoltStore(db, "records")
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, store.Put(fmt.Sprintf("k%03d", i), Record{Siblings: []Sibling{{Value: []byte("v")}}}))
	}
	var buf bytes.Buffer
	n, err := BackupBolt(context.Background(), db, &buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	good := buf.Bytes()
	head := len(backupMagic) + 8
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	// A database whose bytes and checksum agree but bbolt finds broken:
	// the meta pages zeroed, checksum recomputed.
	broken := bytes.Clone(good)
	clear(broken[head : head+8192])
	resum(broken)

	for name, c := range map[string]struct {
		data []byte
		why  string
	}{
		"empty":              {nil, "truncated in its header"},
		"truncated header":   {good[:10], "truncated in its header"},
		"truncated database": {good[:head+1000], "truncated: 1000 of"},
		"truncated checksum": {good[:len(good)-5], "truncated in its checksum"},
		"flipped data byte":  {flip(head + 5000), "SHA-256 mismatch"},
		"flipped checksum":   {flip(len(good) - 1), "SHA-256 mismatch"},
		"not a backup":       {append([]byte("SQLite format 3\x00"), good[16:]...), "no backup header"},
		"zero size":          {append([]byte(backupMagic), make([]byte, 8)...), "database size 0"},
		"inconsistent bbolt": {broken, "does not open"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "node.db")
			err := RestoreBolt(context.Background(), bytes.NewReader(c.data), path)
			require.ErrorIs(t, err, ErrBadBackup)
			require.ErrorIs(t, err, ErrInvalidArgument)
			assert.Contains(t, err.Error(), c.why)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "a refused restore left files behind")
		})
	}

	t.Run("existing target", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "node.db")
		require.NoError(t, os.WriteFile(path, []byte("mine"), 0o600))
		err := RestoreBolt(context.Background(), bytes.NewReader(good), path)
		require.ErrorIs(t, err, ErrInvalidArgument)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "mine", string(b), "an existing file was touched")
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := BackupBolt(ctx, db, &bytes.Buffer{})
		require.ErrorIs(t, err, context.Canceled)
		dir := t.TempDir()
		err = RestoreBolt(ctx, bytes.NewReader(good), filepath.Join(dir, "node.db"))
		require.ErrorIs(t, err, context.Canceled)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries)
	})
	t.Run("good", func(t *testing.T) {
		// Two backups in one stream: each restore reads its own and stops.
		path := filepath.Join(t.TempDir(), "node.db")
		stream := bytes.NewReader(append(bytes.Clone(good), good...))
		require.NoError(t, RestoreBolt(context.Background(), stream, path+".first"))
		require.Equal(t, len(good), stream.Len(), "the first restore read past its backup")
		require.NoError(t, RestoreBolt(context.Background(), stream, path))
		require.Zero(t, stream.Len())
		rdb, err := bolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		defer rdb.Close()
		rs, err := NewBoltStore(rdb, "records")
		require.NoError(t, err)
		var keys int
		require.NoError(t, rs.Range(func(string, Record) bool { keys++; return true }))
		assert.Equal(t, 100, keys)
	})
}

// resum rewrites the checksum of a backup after its database bytes were
// changed.
func resum(b []byte) {
	head := len(backupMagic) + 8
	sum := sha256Sum(b[head : len(b)-32])
	copy(b[len(b)-32:], sum[:])
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
