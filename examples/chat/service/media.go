package service

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
)

// NewMedia opens (creating) the content-addressed blob store of uploads
// in dir: blobs of at most max bytes (0: blob.DefaultMaxBytes) of the
// given content types (nil: blob.DefaultTypes — images, and opaque bytes
// for media encrypted end to end), served only to authenticated users,
// so no shared cache keeps them.
func NewMedia(dir string, max int64, types []string) (*blob.Store, error) {
	st, err := blob.New(dir, blob.Options{MaxBytes: max, Types: types, CacheControl: blob.PrivateCacheControl})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return st, nil
}

// checkMedia reports whether ref names a stored blob, as a client error.
func checkMedia(m *blob.Store, ref string) error {
	switch err := m.Has(ref); {
	case errors.Is(err, blob.ErrBadRef):
		return clientErr("bad_media", "media %q: want sha256:<64 hex digits>", trunc(ref))
	case err != nil:
		return clientErr("bad_media", "media %q is not stored", ref)
	}
	return nil
}

// mediaErr maps an upload's error to a client error (others stay as
// they are: a failing disk is the service's fault).
func mediaErr(err error, max int64) error {
	switch {
	case errors.Is(err, blob.ErrUnsupportedType):
		return clientErr("unsupported_type", "%v", err)
	case errors.Is(err, blob.ErrTooLarge):
		return clientErr("too_large", "upload exceeds %d bytes", max)
	case errors.Is(err, blob.ErrEmpty):
		return clientErr("bad_request", "empty upload")
	}
	return err
}

func (s *Service) postMedia(w http.ResponseWriter, r *http.Request, _ string) {
	m := s.cfg.Media
	if m == nil {
		writeProblem(w, clientErr("not_found", "uploads are off"))
		return
	}
	if r.ContentLength > m.MaxBytes() {
		writeProblem(w, clientErr("too_large", "upload of %d bytes exceeds %d", r.ContentLength, m.MaxBytes()))
		return
	}
	ref, err := m.Put(http.MaxBytesReader(w, r.Body, m.MaxBytes()+1), r.Header.Get("Content-Type"))
	if err != nil {
		writeProblem(w, s.asError(mediaErr(err, m.MaxBytes())))
		return
	}
	writeJSON(w, http.StatusCreated, ref)
}

func (s *Service) getMedia(w http.ResponseWriter, r *http.Request, _ string) {
	ref := r.PathValue("ref")
	if s.cfg.Media == nil || s.cfg.Media.Serve(w, r, ref) != nil {
		writeProblem(w, clientErr("not_found", "no media %q", trunc(ref)))
	}
}

// mediaLimit returns the largest upload, 0 when uploads are off.
func mediaLimit(m *blob.Store) int64 {
	if m == nil {
		return 0
	}
	return m.MaxBytes()
}
