package consensus

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// Backup format. A backup is one line of JSON, the header, then the
// payload: the store's state as a Raft snapshot holds it.
const (
	backupFormat  = "sysdesign-consensus-backup"
	backupVersion = 1
	// maxHeader bounds the header line.
	maxHeader = 4 << 10
)

// BackupInfo describes a backup: it is the backup's header.
type BackupInfo struct {
	// Format names the file format: "sysdesign-consensus-backup".
	Format string `json:"format"`
	// Version is the format's version; this package writes and reads 1.
	Version int `json:"version"`
	// ClusterID identifies the cluster the backup was taken from
	// ([Node.ClusterID]).
	ClusterID string `json:"cluster_id"`
	// Index is the Raft log index (the store's revision) the backup
	// holds every change up to.
	Index uint64 `json:"index"`
	// Size is the payload's length in bytes, SHA256 its hexadecimal
	// SHA-256 digest.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ClusterID returns the cluster's id, the one its backups carry: set
// through the log by the cluster's first [Node.Backup] (or brought by a
// [Node.Restore]), "" before that.
func (n *Node) ClusterID() string {
	if !n.started() {
		return ""
	}
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return n.fsm.clusterID
}

// Backup writes a consistent backup of the store to w, as `etcdctl snapshot
// save` does: a header ([BackupInfo]: format version, cluster id, index,
// size and checksum) and the state machine's state (keys, leases, locks,
// watch history) at one log index. Call it on the leader; a follower
// fails with a [*NotLeaderError] ([Handler] forwards GET /v1/backup).
//
// The backup is a linearizable read of the state machine, not a copy of
// Raft's latest snapshot: the leader confirms its leadership with a quorum
// and waits until it has applied everything committed when the backup
// began, then copies its state under the state machine's lock. So every
// write acknowledged before Backup was called is in the backup (a Raft
// snapshot may be up to SnapshotThreshold entries old), and taking one
// neither writes to disk nor compacts the log. It holds the encoded state
// in memory (about the size of a snapshot) to checksum it before writing.
//
// The backup does not carry the nodes' API addresses ([Node.SetAPIAddr]):
// a restored cluster keeps its own.
func (n *Node) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	if err := n.usable(ctx); err != nil {
		return BackupInfo{}, err
	}
	if w == nil {
		return BackupInfo{}, fmt.Errorf("%w: node %q: nil backup writer", ErrInvalidArgument, n.opts.ID)
	}
	if err := n.ensureClusterID(ctx); err != nil {
		return BackupInfo{}, err
	}
	if err := n.readBarrier(ctx); err != nil {
		return BackupInfo{}, err
	}
	d := n.fsm.state()
	d.API = nil
	payload, err := json.Marshal(&d)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("consensus: node %q: encode backup: %w", n.opts.ID, err)
	}
	sum := sha256.Sum256(payload)
	info := BackupInfo{Format: backupFormat, Version: backupVersion, ClusterID: d.ClusterID, Index: d.Applied, Size: int64(len(payload)), SHA256: hex.EncodeToString(sum[:])}
	hdr, _ := json.Marshal(info)
	bw := bufio.NewWriter(w)
	_, _ = bw.Write(hdr)
	_ = bw.WriteByte('\n')
	_, _ = bw.Write(payload)
	if err := bw.Flush(); err != nil {
		return BackupInfo{}, fmt.Errorf("consensus: node %q: write backup: %w", n.opts.ID, err)
	}
	return info, nil
}

// ensureClusterID gives the cluster an id, through the log, if it has
// none.
func (n *Node) ensureClusterID(ctx context.Context) error {
	if n.ClusterID() != "" {
		return nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	_, err := n.apply(ctx, &command{op: opClusterID, value: []byte(hex.EncodeToString(b[:]))})
	return err
}

// Restore replaces the cluster's whole state with a backup, as `etcdctl
// snapshot restore` does for a new cluster: start and bootstrap the new
// cluster, then call Restore on its leader. It reads and checks the whole
// backup before it changes anything, and refuses, with [ErrInvalidBackup]
// naming the problem, a truncated or corrupted backup (a wrong checksum,
// size or header), one of an unknown format or version, and one of
// another cluster than this one's (a cluster with no [Node.ClusterID] yet
// takes any). The state is then handed to Raft as a snapshot
// (hashicorp/raft's Raft.Restore): the leader installs it, followers
// receive it, the log continues past the backup's index so revisions keep
// growing, and the cluster takes the backup's cluster id. Writes in flight
// fail with [ErrIndeterminate].
//
// Locks and leases come back as they were; a lease's expiry is the old
// leader's, so one whose TTL passed since the backup is revoked at the
// next sweep.
func (n *Node) Restore(ctx context.Context, r io.Reader) (BackupInfo, error) {
	if err := n.usable(ctx); err != nil {
		return BackupInfo{}, err
	}
	if r == nil {
		return BackupInfo{}, fmt.Errorf("%w: node %q: nil backup reader", ErrInvalidArgument, n.opts.ID)
	}
	info, d, err := readBackup(r)
	if err != nil {
		return info, err
	}
	if cur := n.ClusterID(); cur != "" && cur != info.ClusterID {
		return info, fmt.Errorf("%w: backup of cluster %s, this cluster is %s", ErrInvalidBackup, info.ClusterID, cur)
	}
	// The restored state carries this cluster's API addresses, as the
	// leader has them once it has applied everything committed: a follower
	// that had not yet applied one would lose it, for the snapshot replaces
	// the entries it skips.
	if err := n.readBarrier(ctx); err != nil {
		return info, err
	}
	d.API = n.fsm.apiAddrs()
	payload, err := json.Marshal(&d)
	if err != nil {
		return info, fmt.Errorf("consensus: node %q: encode restored state: %w", n.opts.ID, err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: info.Index, Size: int64(len(payload))}
	err = n.raft.Restore(meta, bytes.NewReader(payload), n.timeout(ctx))
	// The state machine's applied index is now the backup's, behind Raft's
	// commit index: the next linearizable call must commit a no-op again
	// before it compares the two (see termBarrier).
	n.barrierTerm.Store(0)
	if err != nil {
		return info, n.mapErr(err)
	}
	return info, nil
}

// readBackup reads a whole backup from r and checks it: the header's
// format and version, the payload's size and checksum, and that the
// payload decodes to the state the header describes. It returns the
// header and the decoded state, or an error wrapping [ErrInvalidBackup]
// that names the problem. [Node.Restore] calls it before it changes
// anything.
func readBackup(r io.Reader) (BackupInfo, snapshotData, error) {
	br := bufio.NewReaderSize(r, maxHeader)
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return BackupInfo{}, snapshotData{}, fmt.Errorf("%w: no header line within %d bytes: not a backup", ErrInvalidBackup, maxHeader)
	case errors.Is(err, io.EOF) && len(line) == 0:
		return BackupInfo{}, snapshotData{}, fmt.Errorf("%w: empty file", ErrInvalidBackup)
	case errors.Is(err, io.EOF):
		return BackupInfo{}, snapshotData{}, fmt.Errorf("%w: truncated in its header (%d bytes)", ErrInvalidBackup, len(line))
	case err != nil:
		return BackupInfo{}, snapshotData{}, fmt.Errorf("consensus: read backup: %w", err)
	}
	var info BackupInfo
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return BackupInfo{}, snapshotData{}, fmt.Errorf("%w: malformed header: %v", ErrInvalidBackup, err)
	}
	switch {
	case info.Format != backupFormat:
		return info, snapshotData{}, fmt.Errorf("%w: format %q, want %q", ErrInvalidBackup, info.Format, backupFormat)
	case info.Version != backupVersion:
		return info, snapshotData{}, fmt.Errorf("%w: format version %d, this build reads %d", ErrInvalidBackup, info.Version, backupVersion)
	case info.ClusterID == "":
		return info, snapshotData{}, fmt.Errorf("%w: header names no cluster", ErrInvalidBackup)
	case info.Size < 0:
		return info, snapshotData{}, fmt.Errorf("%w: negative size %d", ErrInvalidBackup, info.Size)
	}
	// Read one byte past the size, so that trailing data shows; never
	// allocate what a corrupted header claims, only what arrives.
	payload, err := io.ReadAll(io.LimitReader(br, info.Size+1))
	if err != nil {
		return info, snapshotData{}, fmt.Errorf("consensus: read backup: %w", err)
	}
	switch {
	case int64(len(payload)) < info.Size:
		return info, snapshotData{}, fmt.Errorf("%w: truncated: %d of %d payload bytes", ErrInvalidBackup, len(payload), info.Size)
	case int64(len(payload)) > info.Size:
		return info, snapshotData{}, fmt.Errorf("%w: data after the %d payload bytes the header announces", ErrInvalidBackup, info.Size)
	}
	sum := sha256.Sum256(payload)
	if got := hex.EncodeToString(sum[:]); got != info.SHA256 {
		return info, snapshotData{}, fmt.Errorf("%w: checksum mismatch: header says sha256 %s, payload hashes to %s (corrupted)", ErrInvalidBackup, info.SHA256, got)
	}
	var d snapshotData
	if err := json.Unmarshal(payload, &d); err != nil {
		return info, snapshotData{}, fmt.Errorf("%w: payload does not decode: %v", ErrInvalidBackup, err)
	}
	if d.ClusterID != info.ClusterID || d.Applied != info.Index {
		return info, snapshotData{}, fmt.Errorf("%w: payload is of cluster %s at index %d, header says %s at %d", ErrInvalidBackup, d.ClusterID, d.Applied, info.ClusterID, info.Index)
	}
	return info, d, nil
}
