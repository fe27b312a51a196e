package replica

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// backupMagic opens every backup BackupBolt writes.
const backupMagic = "sysdesign bbolt backup v1\n"

// BackupBolt writes an online backup of db — a node's [BoltStore]
// buckets, or any bbolt database — to w and returns the bytes written. It
// copies the database as one read transaction sees it (bbolt's
// Tx.WriteTo), so writes go on while it runs and the copy holds every
// write committed before it began. The stream is framed so that
// [RestoreBolt] can refuse a truncated or corrupted copy: a header, the
// size, the database, and its SHA-256. Cancelling ctx stops the copy
// with ctx's error; what was written is then no backup.
func BackupBolt(ctx context.Context, db *bolt.DB, w io.Writer) (int64, error) {
	if db == nil {
		return 0, fmt.Errorf("%w: backup of a nil database", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := db.View(func(tx *bolt.Tx) error {
		size := tx.Size()
		var head [len(backupMagic) + 8]byte
		copy(head[:], backupMagic)
		binary.BigEndian.PutUint64(head[len(backupMagic):], uint64(size))
		m, err := w.Write(head[:])
		n += int64(m)
		if err != nil {
			return err
		}
		sum := sha256.New()
		written, err := tx.WriteTo(io.MultiWriter(ctxWriter{ctx, w}, sum))
		n += written
		if err != nil {
			return err
		}
		if written != size {
			return fmt.Errorf("replica: backup wrote %d bytes of a %d-byte database", written, size)
		}
		m, err = w.Write(sum.Sum(nil))
		n += int64(m)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("replica: backup: %w", err)
	}
	return n, nil
}

// RestoreBolt writes the database of a backup read from r ([BackupBolt]'s
// format) to a new file at path, which must not exist. It reads r up to
// the backup's end and no further, so that backups written one after
// another to one stream restore one after another. Before anything appears at path, it checks that the backup is
// whole — header, size, SHA-256 — and that bbolt finds the database
// consistent (Tx.Check); a truncated, corrupted or foreign file is refused
// with an error wrapping [ErrBadBackup] that names the problem, and path
// is left untouched. Open the restored file with bbolt and pass it to
// [NewBoltStore] as usual.
func RestoreBolt(ctx context.Context, r io.Reader, path string) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: restore target %s exists; restore into a new path", ErrInvalidArgument, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replica: restore: %w", err)
	}
	r = ctxReader{ctx, r}
	var head [len(backupMagic) + 8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return badBackup("header", err)
	}
	if string(head[:len(backupMagic)]) != backupMagic {
		return fmt.Errorf("%w: no backup header (the file starts %q)", ErrBadBackup, head[:min(len(head), 16)])
	}
	size := int64(binary.BigEndian.Uint64(head[len(backupMagic):]))
	if size <= 0 {
		return fmt.Errorf("%w: database size %d in the header", ErrBadBackup, size)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".restore-*")
	if err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	sum := sha256.New()
	copied, err := io.CopyN(io.MultiWriter(tmp, sum), r, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: truncated: %d of %d database bytes", ErrBadBackup, copied, size)
		}
		return badBackup("database", err)
	}
	var want [sha256.Size]byte
	if _, err := io.ReadFull(r, want[:]); err != nil {
		return badBackup("checksum", err)
	}
	if !bytes.Equal(sum.Sum(nil), want[:]) {
		return fmt.Errorf("%w: SHA-256 mismatch: the database bytes are corrupted", ErrBadBackup)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	if err := checkBolt(tmp.Name()); err != nil {
		return err
	}
	// Linked, not renamed: a path that appeared meanwhile is not replaced.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	_ = os.Remove(tmp.Name())
	return syncDir(filepath.Dir(path))
}

// checkBolt opens the database at path read-only and runs bbolt's
// consistency check.
func checkBolt(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: the database does not open: %w", ErrBadBackup, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("%w: the database is inconsistent: %w", ErrBadBackup, err)
		}
		return nil
	})
}

func badBackup(part string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated in its %s", ErrBadBackup, part)
	}
	return fmt.Errorf("replica: restore: reading the %s: %w", part, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	return errors.Join(d.Sync(), d.Close())
}

// ctxWriter and ctxReader stop a copy when their context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
