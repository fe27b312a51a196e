// Package blob is the content-addressed blob store of the example
// services — media attachments on local disk, served the way a CDN origin
// serves them — for the guide System Design Round — Principal Engineer
// Interview Preparation, "Real-World System Designs → 3. Social Media
// Feed" ("Media Storage: Images, videos, attachments") and "2. Chat
// Application" ("Media sharing: File upload and storage"), with the
// caching headers of "Performance Considerations → Latency Optimization"
// (CDN, browser cache).
//
//	st, err := blob.New(dir, blob.Options{MaxBytes: 8 << 20})
//	ref, err := st.Put(r.Body, r.Header.Get("Content-Type")) // ref.Ref is "sha256:<hex>"
//	st.Serve(w, r, ref.Ref)                                   // ETag, Cache-Control: immutable, 304 on If-None-Match
//
// A blob's name is the SHA-256 of its bytes, so a blob never changes under
// its name: it may be cached for good (immutable), and an upload retried
// after a lost reply stores nothing new and answers the same reference.
// Each upload is written to a temporary file, synced, renamed into place
// and its directory synced, so a blob is whole or absent, never
// half-written, even across a crash.
package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Errors of [Store.Put], [Store.Open] and [New]; each is wrapped with the
// value at fault, so callers test them with errors.Is.
var (
	ErrInvalidConfig   = errors.New("blob: invalid configuration")
	ErrTooLarge        = errors.New("blob: too large")
	ErrEmpty           = errors.New("blob: empty")
	ErrUnsupportedType = errors.New("blob: unsupported content type")
	ErrBadRef          = errors.New("blob: malformed reference")
	ErrNotFound        = errors.New("blob: not found")
)

// DefaultMaxBytes is the largest blob when Options.MaxBytes is 0.
const DefaultMaxBytes = 8 << 20

// DefaultTypes are the content types accepted when Options.Types is nil:
// images, and opaque bytes (media encrypted end to end).
var DefaultTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "application/octet-stream"}

// Options configure a [Store]; the zero value takes the defaults.
type Options struct {
	// MaxBytes bounds a blob's size. Default DefaultMaxBytes.
	MaxBytes int64
	// Types are the content types accepted. Every type but
	// application/octet-stream must match what the bytes look like
	// (http.DetectContentType). Default DefaultTypes.
	Types []string
	// CacheControl is the Cache-Control header [Store.Serve] sends.
	// Default [CacheControl]; a store whose blobs are served only to
	// authenticated users sets [PrivateCacheControl], so that shared
	// caches keep none.
	CacheControl string
}

// Store is a content-addressed blob store in a directory. It is safe for
// concurrent use, also by several processes sharing the directory.
type Store struct {
	dir          string
	max          int64
	types        []string
	cacheControl string
}

// Ref is a stored blob: its reference, size and declared type.
type Ref struct {
	Ref  string `json:"ref"`
	Size int64  `json:"size"`
	Type string `json:"type"`
}

// New opens (creating) a store in dir.
func New(dir string, opts Options) (*Store, error) {
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: MaxBytes %d is negative", ErrInvalidConfig, opts.MaxBytes)
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Types == nil {
		opts.Types = DefaultTypes
	}
	if opts.CacheControl == "" {
		opts.CacheControl = CacheControl
	}
	if len(opts.Types) == 0 {
		return nil, fmt.Errorf("%w: no content type accepted", ErrInvalidConfig)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Store{dir: dir, max: opts.MaxBytes, types: slices.Clone(opts.Types), cacheControl: opts.CacheControl}, nil
}

// MaxBytes returns the largest blob the store takes.
func (s *Store) MaxBytes() int64 { return s.max }

var refRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// CheckRef reports whether ref is well-formed: "sha256:" and 64 lower-case
// hex digits. The error wraps ErrBadRef.
func CheckRef(ref string) error {
	if !refRE.MatchString(ref) {
		if len(ref) > 80 {
			ref = ref[:80] + "…"
		}
		return fmt.Errorf("%w: %q: want sha256:<64 hex digits>", ErrBadRef, ref)
	}
	return nil
}

func (s *Store) path(ref string) string {
	h := strings.TrimPrefix(ref, "sha256:")
	return filepath.Join(s.dir, h[:2], h)
}

// Has reports whether ref names a stored blob: nil, or an error wrapping
// ErrBadRef or ErrNotFound.
func (s *Store) Has(ref string) error {
	if err := CheckRef(ref); err != nil {
		return err
	}
	if _, err := os.Stat(s.path(ref)); err != nil {
		return fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return nil
}

// Put stores r's bytes, declared of content type typ, and returns their
// reference. It reads at most MaxBytes+1 bytes; errors wrap ErrTooLarge,
// ErrEmpty or ErrUnsupportedType for bad input, and leave nothing behind.
func (s *Store) Put(r io.Reader, typ string) (Ref, error) {
	if !slices.Contains(s.types, typ) {
		if len(typ) > 80 {
			typ = typ[:80] + "…"
		}
		return Ref{}, fmt.Errorf("%w: %q (want one of %s)", ErrUnsupportedType, typ, strings.Join(s.types, ", "))
	}
	tmp, err := os.CreateTemp(s.dir, "upload-*")
	if err != nil {
		return Ref{}, err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op once renamed
	defer func() { _ = tmp.Close() }()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, s.max+1))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb) || n > s.max:
		return Ref{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, s.max)
	case err != nil:
		return Ref{}, err
	case n == 0:
		return Ref{}, ErrEmpty
	}
	if typ != "application/octet-stream" {
		head := make([]byte, 512)
		k, _ := tmp.ReadAt(head, 0)
		if got := http.DetectContentType(head[:k]); got != typ {
			return Ref{}, fmt.Errorf("%w: declared %q, looks like %q", ErrUnsupportedType, typ, got)
		}
	}
	ref := Ref{Ref: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n, Type: typ}
	if err := tmp.Sync(); err != nil {
		return Ref{}, err
	}
	if err := tmp.Close(); err != nil {
		return Ref{}, err
	}
	dst := s.path(ref.Ref)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return Ref{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return Ref{}, err
	}
	return ref, syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// Open opens the blob ref for reading; errors wrap ErrBadRef or
// ErrNotFound.
func (s *Store) Open(ref string) (*os.File, error) {
	if err := CheckRef(ref); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(ref))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return f, nil
}

// CacheControl is the caching policy of a served blob: any cache may keep
// it for a year and never revalidate, as its name is its content.
const CacheControl = "public, max-age=31536000, immutable"

// PrivateCacheControl keeps a blob in the requester's own cache for good,
// and in no shared one.
const PrivateCacheControl = "private, max-age=31536000, immutable"

// Serve writes the blob ref as a CDN origin would: with its reference as
// a strong ETag, the store's Cache-Control (Options.CacheControl), nosniff, range support, and 304 Not
// Modified to a request whose If-None-Match names it. It reports
// ErrBadRef or ErrNotFound without writing, for the caller to answer.
func (s *Store) Serve(w http.ResponseWriter, r *http.Request, ref string) error {
	f, err := s.Open(ref)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	h := w.Header()
	h.Set("ETag", `"`+ref+`"`)
	h.Set("Cache-Control", s.cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}
