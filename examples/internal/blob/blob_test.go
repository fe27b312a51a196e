package blob_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var png = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 100)...)

func refOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// files lists every file under dir.
func files(t *testing.T, dir string) []string {
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	}))
	return out
}

// A blob is named by its SHA-256; storing it again, even from many
// goroutines at once, answers the same reference and keeps one file.
func TestPutIsContentAddressed(t *testing.T) {
	dir := t.TempDir()
	st, err := blob.New(dir, blob.Options{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	refs := make([]blob.Ref, 8)
	for i := range refs {
		wg.Go(func() {
			r, err := st.Put(bytes.NewReader(png), "image/png")
			assert.NoError(t, err)
			refs[i] = r
		})
	}
	wg.Wait()
	for _, r := range refs {
		assert.Equal(t, blob.Ref{Ref: refOf(png), Size: int64(len(png)), Type: "image/png"}, r)
	}
	assert.Len(t, files(t, dir), 1, "one file, no temporary left")
	require.NoError(t, st.Has(refOf(png)))
	f, err := st.Open(refOf(png))
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, png, b)
}

// Bad uploads are refused with an error naming the fault, and leave no
// file behind.
func TestPutRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	st, err := blob.New(dir, blob.Options{MaxBytes: 64})
	require.NoError(t, err)
	for _, c := range []struct {
		name, typ string
		body      []byte
		want      error
		detail    string
	}{
		{"over the limit", "application/octet-stream", bytes.Repeat([]byte{0}, 65), blob.ErrTooLarge, "over 64 bytes"},
		{"exactly the limit plus a MaxBytesReader", "application/octet-stream", nil, blob.ErrTooLarge, "over 64"},
		{"empty", "application/octet-stream", []byte{}, blob.ErrEmpty, "empty"},
		{"type not accepted", "application/x-msdownload", []byte("MZ"), blob.ErrUnsupportedType, `"application/x-msdownload"`},
		{"declared PNG, is text", "image/png", []byte("hello"), blob.ErrUnsupportedType, `looks like "text/plain`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(c.body)
			if c.body == nil {
				r = http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(make([]byte, 200))), 10)
			}
			_, err := st.Put(r, c.typ)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.detail)
		})
	}
	assert.Empty(t, files(t, dir))
	_, err = st.Put(bytes.NewReader(bytes.Repeat([]byte{0}, 64)), "application/octet-stream")
	assert.NoError(t, err, "exactly the limit is accepted")
}

func TestRefs(t *testing.T) {
	st, err := blob.New(t.TempDir(), blob.Options{})
	require.NoError(t, err)
	for _, ref := range []string{"", "sha256:", "sha256:" + strings.Repeat("A", 64), "md5:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("a", 63), "../../etc/passwd"} {
		assert.ErrorIs(t, st.Has(ref), blob.ErrBadRef, ref)
		_, err := st.Open(ref)
		assert.ErrorIs(t, err, blob.ErrBadRef, ref)
	}
	assert.ErrorIs(t, st.Has(refOf([]byte("x"))), blob.ErrNotFound)
}

func TestBadOptions(t *testing.T) {
	_, err := blob.New(t.TempDir(), blob.Options{MaxBytes: -1})
	assert.ErrorIs(t, err, blob.ErrInvalidConfig)
	_, err = blob.New(t.TempDir(), blob.Options{Types: []string{}})
	assert.ErrorIs(t, err, blob.ErrInvalidConfig)
}

// Served like a CDN origin: a strong ETag that is the reference,
// Cache-Control immutable, and 304 with no body when the client has it.
func TestServe(t *testing.T) {
	st, err := blob.New(t.TempDir(), blob.Options{})
	require.NoError(t, err)
	ref, err := st.Put(bytes.NewReader(png), "image/png")
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := st.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/")); err != nil {
			code := http.StatusNotFound
			if errors.Is(err, blob.ErrBadRef) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/" + ref.Ref)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, png, b)
	assert.Equal(t, `"`+ref.Ref+`"`, resp.Header.Get("ETag"))
	assert.Equal(t, blob.CacheControl, resp.Header.Get("Cache-Control"))
	assert.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))

	req, _ := http.NewRequest("GET", srv.URL+"/"+ref.Ref, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	assert.Empty(t, b)

	for path, want := range map[string]int{"/" + refOf([]byte("x")): 404, "/sha256:zz": 400} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
	}
}
