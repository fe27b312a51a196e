package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// storage is the log, stable store and snapshot store a node runs on.
type storage struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	db     io.Closer // the durable log and stable store; nil in memory
}

const (
	// logFile is the durable log and stable store, in the data directory.
	logFile = "raft.db"
	// logCacheSize is how many recent entries the leader serves to
	// followers from memory rather than from disk.
	logCacheSize = 512
	// lockTimeout bounds the wait for the log file's lock: a second node
	// on the same data directory fails instead of hanging.
	lockTimeout = time.Second
)

func newInmemStorage() *storage {
	s := raft.NewInmemStore()
	return &storage{logs: s, stable: s, snaps: &inmemSnapshots{}}
}

// inmemSnapshots keeps the latest snapshot in memory. It replaces raft's
// InmemSnapshotStore, which publishes a snapshot when it is created rather
// than when it is complete: a leader sending its latest snapshot to a
// lagging follower could read the buffer while the state machine was still
// writing it (a data race, and a truncated snapshot on the wire).
type inmemSnapshots struct {
	mu     sync.Mutex
	latest *raft.SnapshotMeta // guarded by mu; nil until a sink closes
	data   []byte             // guarded by mu; never modified once published
}

var _ raft.SnapshotStore = (*inmemSnapshots)(nil)

// Create implements raft.SnapshotStore.
func (s *inmemSnapshots) Create(version raft.SnapshotVersion, index, term uint64, cfg raft.Configuration, cfgIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("consensus: unsupported snapshot version %d", version)
	}
	return &inmemSnapshotSink{store: s, meta: raft.SnapshotMeta{
		Version: version, ID: fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli()),
		Index: index, Term: term, Configuration: cfg, ConfigurationIndex: cfgIndex,
	}}, nil
}

// List implements raft.SnapshotStore.
func (s *inmemSnapshots) List() ([]*raft.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		return nil, nil
	}
	meta := *s.latest
	return []*raft.SnapshotMeta{&meta}, nil
}

// Open implements raft.SnapshotStore.
func (s *inmemSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil || s.latest.ID != id {
		return nil, nil, fmt.Errorf("consensus: no snapshot %q", id)
	}
	meta := *s.latest
	return &meta, io.NopCloser(bytes.NewReader(s.data)), nil
}

// inmemSnapshotSink buffers one snapshot and publishes it on Close.
type inmemSnapshotSink struct {
	store *inmemSnapshots
	meta  raft.SnapshotMeta
	buf   bytes.Buffer
}

func (k *inmemSnapshotSink) Write(p []byte) (int, error) { return k.buf.Write(p) }
func (k *inmemSnapshotSink) ID() string                  { return k.meta.ID }
func (k *inmemSnapshotSink) Cancel() error               { return nil }

func (k *inmemSnapshotSink) Close() error {
	k.meta.Size = int64(k.buf.Len())
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	k.store.latest, k.store.data = &k.meta, k.buf.Bytes()
	return nil
}

// openDurableStorage opens the log and stable store in dir/raft.db
// (hashicorp/raft-boltdb/v2, fsynced on every write) and file snapshots in
// dir/snapshots.
func openDurableStorage(id, dir string, logger hclog.Logger) (*storage, error) {
	if fi, err := os.Stat(filepath.Join(dir, "wal")); err == nil && fi.IsDir() {
		// Starting without that log would lose the node's term and vote
		// (its snapshots do not hold them) and let it vote twice in a term.
		return nil, fmt.Errorf("%w: node %q: data directory %q holds a raft-wal log (wal/) that this version does not read; move the directory aside and add the node back as a new member", ErrInvalidConfig, id, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: node %q: data directory %q: %w", id, dir, err)
	}
	path := filepath.Join(dir, logFile)
	db, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: lockTimeout}})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: node %q: log %q is locked by another process or node", ErrInvalidConfig, id, path)
	}
	if err != nil {
		return nil, fmt.Errorf("consensus: node %q: open log %q: %w", id, path, err)
	}
	logs, err := raft.NewLogCache(logCacheSize, db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("consensus: node %q: log cache: %w", id, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, logger)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("consensus: node %q: snapshot store in %q: %w", id, dir, err)
	}
	return &storage{logs: logs, stable: db, snaps: snaps, db: db}, nil
}

// close closes the durable store, if any.
func (s *storage) close() error {
	if s == nil || s.db == nil {
		return nil
	}
	return s.db.Close()
}
