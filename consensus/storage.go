package consensus

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
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
	return &storage{logs: s, stable: s, snaps: raft.NewInmemSnapshotStore()}
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
	if errors.Is(err, bbolt.ErrTimeout) {
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
