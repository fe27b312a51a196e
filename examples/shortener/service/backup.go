package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sysdesign-go/sysdesign/shard/replica"
)

// backupMagic opens every backup [Storage.Backup] writes.
const backupMagic = "sysdesign shortener backup v1\n"

// ErrBadBackup wraps every backup [RestoreStorage] refuses.
var ErrBadBackup = errors.New("service: bad backup")

// backupHeader describes the data directory a backup was taken from.
type backupHeader struct {
	Shards int    `json:"shards"`
	ID     string `json:"id"`
}

// Backup writes an online backup of the storage to w and returns the bytes
// written: a header (the shard count and [Storage.ID], with its SHA-256),
// then each shard's bbolt file as one read transaction sees it
// ([replica.BackupBolt]), so the service goes on taking writes, and the
// backup holds every write acknowledged before Backup was called. Shards
// are copied one after another; a write acknowledged while Backup runs may
// or may not be in it. Restore it with [RestoreStorage].
func (s *Storage) Backup(ctx context.Context, w io.Writer) (int64, error) {
	hdr, err := json.Marshal(backupHeader{Shards: len(s.stores), ID: s.id})
	if err != nil {
		return 0, err
	}
	sum := sha256.Sum256(hdr)
	var buf bytes.Buffer
	buf.WriteString(backupMagic)
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(hdr)))
	buf.Write(hdr)
	buf.Write(sum[:])
	n, err := buf.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("%w: backup: %w", ErrStorage, err)
	}
	for i := range len(s.stores) {
		m, err := replica.BackupBolt(ctx, s.stores[shardName(i)].db, w)
		n += m
		if err != nil {
			return n, fmt.Errorf("%w: backup of %s: %w", ErrStorage, shardName(i), err)
		}
	}
	return n, nil
}

// RestoreStorage writes the backup read from r into the data directory
// dir, which must not exist or be empty, and reads r to its end. It builds
// the directory beside dir and moves it into place only when every part
// checks out — the header's checksum, each shard's size, SHA-256 and
// bbolt consistency, nothing after the last shard — so a truncated or
// corrupted backup is refused with an error wrapping [ErrBadBackup] that
// names the problem, and dir is left as it was. Open the result with
// [OpenStorage] and the shard count of the backup.
func RestoreStorage(ctx context.Context, r io.Reader, dir string) (err error) {
	if dir == "" {
		return fmt.Errorf("%w: empty data directory", ErrStorage)
	}
	switch entries, err := os.ReadDir(dir); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%w: restore: %w", ErrStorage, err)
	case len(entries) > 0:
		return fmt.Errorf("%w: restore into %s, which is not empty; restore into a new directory", ErrStorage, dir)
	}
	head := make([]byte, len(backupMagic)+4)
	if _, err := io.ReadFull(r, head); err != nil {
		return fmt.Errorf("%w: truncated in its header", ErrBadBackup)
	}
	if string(head[:len(backupMagic)]) != backupMagic {
		return fmt.Errorf("%w: not a shortener backup (it starts %q)", ErrBadBackup, head[:min(len(head), 16)])
	}
	size := binary.BigEndian.Uint32(head[len(backupMagic):])
	if size > 4096 {
		return fmt.Errorf("%w: header of %d bytes", ErrBadBackup, size)
	}
	hdr := make([]byte, size+sha256.Size)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("%w: truncated in its header", ErrBadBackup)
	}
	if sum := sha256.Sum256(hdr[:size]); !bytes.Equal(sum[:], hdr[size:]) {
		return fmt.Errorf("%w: header SHA-256 mismatch", ErrBadBackup)
	}
	var h backupHeader
	if err := json.Unmarshal(hdr[:size], &h); err != nil {
		return fmt.Errorf("%w: header: %w", ErrBadBackup, err)
	}
	if h.Shards < 1 || h.Shards > 1024 || !validNamespace(h.ID) {
		return fmt.Errorf("%w: header names %d shards and ID %q", ErrBadBackup, h.Shards, truncate(h.ID))
	}

	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return fmt.Errorf("%w: restore: %w", ErrStorage, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restore-*")
	if err != nil {
		return fmt.Errorf("%w: restore: %w", ErrStorage, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	for i := range h.Shards {
		if err := replica.RestoreBolt(ctx, r, filepath.Join(tmp, shardName(i)+".db")); err != nil {
			if errors.Is(err, replica.ErrBadBackup) {
				return fmt.Errorf("%w: %s: %w", ErrBadBackup, shardName(i), err)
			}
			return fmt.Errorf("%w: restore of %s: %w", ErrStorage, shardName(i), err)
		}
	}
	if m, _ := r.Read(make([]byte, 1)); m > 0 {
		return fmt.Errorf("%w: data after the last shard", ErrBadBackup)
	}
	for name, content := range map[string]string{"SHARDS": strconv.Itoa(h.Shards) + "\n", "ID": h.ID + "\n"} {
		if err := writeSynced(filepath.Join(tmp, name), content); err != nil {
			return fmt.Errorf("%w: restore: %w", ErrStorage, err)
		}
	}
	// An empty dir gives way (os.Remove refuses one with files).
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: restore: %w", ErrStorage, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("%w: restore: %w", ErrStorage, err)
	}
	d, err := os.Open(parent)
	if err != nil {
		return fmt.Errorf("%w: restore: %w", ErrStorage, err)
	}
	return errors.Join(d.Sync(), d.Close())
}

func writeSynced(path, content string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	return errors.Join(err, f.Sync(), f.Close())
}

func shardName(i int) string { return fmt.Sprintf("shard-%02d", i) }
