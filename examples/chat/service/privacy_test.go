package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
)

// End-to-end encryption: clients publish public keys through the
// gateway and seal messages and media with NaCl box; the gateway stores
// and forwards only ciphertext. The test reads every Redis key of the
// deployment and every blob file and finds no plaintext.
func TestEndToEndEncryptionStoresNoPlaintext(t *testing.T) {
	mediaDir := t.TempDir()
	media, err := service.NewMedia(mediaDir, 0, nil)
	require.NoError(t, err)
	e := newEnv(t, 1, service.Config{Media: media}, false)
	keys := map[string]client.Keys{}
	for _, u := range []string{"alice", "bob"} {
		k, err := client.NewKeys()
		require.NoError(t, err)
		keys[u] = k
		st, body := e.putJSON(e.urls[0]+"/api/v1/keys", u, map[string]string{"public_key": k.PublicBase64()})
		require.Equal(t, http.StatusOK, st, "%s", body)
	}
	peer := func(of, user string) *[32]byte {
		st, _, body := e.call("GET", e.urls[0]+"/api/v1/keys/"+user, of, "", nil)
		require.Equal(t, http.StatusOK, st, "%s", body)
		var pk service.PublicKey
		require.NoError(t, json.Unmarshal(body, &pk))
		k, err := client.ParsePublic(pk.Key)
		require.NoError(t, err)
		return k
	}
	const secret = "the eagle lands at midnight"
	const secretMedia = "attached: the launch codes"
	sealedMedia, err := keys["alice"].Seal(secretMedia, peer("alice", "bob"))
	require.NoError(t, err)
	st, h, body := e.call("POST", e.urls[0]+"/api/v1/media", "alice", "application/octet-stream", []byte(sealedMedia))
	require.Equal(t, http.StatusCreated, st, "%s", body)
	_ = h
	var ref blob.Ref
	require.NoError(t, json.Unmarshal(body, &ref))

	alice, bob := e.dial("alice", 0), e.dial("bob", 0)
	sealed, err := keys["alice"].Seal(secret, peer("alice", "bob"))
	require.NoError(t, err)
	require.NoError(t, alice.c.Write(context.Background(), service.Frame{Type: "send", Conv: "d:alice:bob", ID: "e1", Body: sealed, Media: ref.Ref}))
	alice.next("sent")
	got := bob.next("msg")
	assert.NotContains(t, got.Body, "eagle")
	plain, err := keys["bob"].Open(got.Body, peer("bob", "alice"))
	require.NoError(t, err)
	assert.Equal(t, secret, plain)
	_, err = keys["bob"].Open(got.Body, keys["bob"].Public)
	assert.ErrorIs(t, err, client.ErrOpen, "the wrong key opens nothing")
	st, _, blob := e.call("GET", e.urls[0]+"/api/v1/media/"+got.Media, "bob", "", nil)
	require.Equal(t, http.StatusOK, st)
	plainMedia, err := keys["bob"].Open(string(blob), peer("bob", "alice"))
	require.NoError(t, err)
	assert.Equal(t, secretMedia, plainMedia)

	// Everything the server stores.
	var stored bytes.Buffer
	ctx := context.Background()
	iter := e.db.Client.Scan(ctx, 0, e.db.Prefix+"*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		k := iter.Val()
		n++
		typ, err := e.db.Client.Type(ctx, k).Result()
		require.NoError(t, err)
		var v any
		switch typ {
		case "string":
			v, err = e.db.Client.Get(ctx, k).Result()
		case "stream":
			v, err = e.db.Client.XRange(ctx, k, "-", "+").Result()
		case "hash":
			v, err = e.db.Client.HGetAll(ctx, k).Result()
		case "set":
			v, err = e.db.Client.SMembers(ctx, k).Result()
		case "zset":
			v, err = e.db.Client.ZRange(ctx, k, 0, -1).Result()
		default:
			t.Fatalf("key %s of unexpected type %s", k, typ)
		}
		require.NoError(t, err)
		fmt.Fprintf(&stored, "%s %v\n", k, v)
	}
	require.NoError(t, iter.Err())
	require.GreaterOrEqual(t, n, 4, "the conversation's seq, log, dedup and bob's inbox at least")
	require.Contains(t, stored.String(), sealed, "the ciphertext is what is stored")
	require.NoError(t, filepath.Walk(mediaDir, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		if !fi.IsDir() {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			stored.Write(b)
		}
		return nil
	}))
	for _, word := range []string{"eagle", "midnight", "launch codes"} {
		assert.NotContains(t, stored.String(), word)
	}
}

func (e *env) putJSON(url, user string, v any) (int, []byte) {
	e.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(e.t, err)
	st, _, body := e.call("PUT", url, user, "application/json", b)
	return st, body
}

func pngBytes(t *testing.T, w int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, w))
	for i := range w {
		img.Set(i, i, color.RGBA{R: uint8(i), A: 255})
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// Uploads are content-addressed: the same bytes (a retry after a lost
// reply) give the same reference and one file; an upload over the limit
// or of another type is refused and leaves no file behind.
func TestMediaUploads(t *testing.T) {
	dir := t.TempDir()
	media, err := service.NewMedia(dir, 4096, nil)
	require.NoError(t, err)
	e := newEnv(t, 1, service.Config{Media: media}, false)
	img := pngBytes(t, 8)
	var refs []blob.Ref
	for range 2 {
		st, _, body := e.call("POST", e.urls[0]+"/api/v1/media", "alice", "image/png", img)
		require.Equal(t, http.StatusCreated, st, "%s", body)
		var r blob.Ref
		require.NoError(t, json.Unmarshal(body, &r))
		refs = append(refs, r)
	}
	assert.Equal(t, refs[0], refs[1])
	assert.Equal(t, int64(len(img)), refs[0].Size)
	assert.True(t, strings.HasPrefix(refs[0].Ref, "sha256:"))

	st, h, body := e.call("GET", e.urls[0]+"/api/v1/media/"+refs[0].Ref, "bob", "", nil)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, img, body)
	assert.Equal(t, "image/png", h.Get("Content-Type"))
	assert.Equal(t, blob.PrivateCacheControl, h.Get("Cache-Control"), "media is for authenticated users: no shared cache keeps it")
	assert.Equal(t, `"`+refs[0].Ref+`"`, h.Get("ETag"))

	alice := e.dial("alice", 0)
	require.NoError(t, alice.c.Write(context.Background(), service.Frame{Type: "send", Conv: "d:alice:bob", ID: "pic", Media: refs[0].Ref}))
	assert.Equal(t, int64(1), alice.next("sent").Seq)

	bad := []struct {
		name, ctype string
		body        []byte
		status      int
		code        string
	}{
		{"over the limit", "image/png", append(append([]byte{}, img...), bytes.Repeat([]byte{0}, 5000)...), 413, "too_large"},
		{"type not allowed", "text/html", []byte("<html>"), 415, "unsupported_type"},
		{"type does not match the bytes", "image/png", []byte("GIF89a not a png"), 415, "unsupported_type"},
		{"empty", "image/png", nil, 400, "bad_request"},
	}
	for _, c := range bad {
		st, h, body := e.call("POST", e.urls[0]+"/api/v1/media", "alice", c.ctype, c.body)
		assert.Equal(t, c.status, st, "%s: %s", c.name, body)
		assert.Equal(t, c.code, problem(t, h, body), c.name)
	}
	var files []string
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, filepath.Base(p))
		}
		return err
	}))
	assert.Equal(t, []string{strings.TrimPrefix(refs[0].Ref, "sha256:")}, files, "one blob, no temporary files")
}
