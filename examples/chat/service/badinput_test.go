package service_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
)

// Frames that break the protocol close the connection with a code that
// says why; the gateway stores nothing of them and keeps serving others.
func TestBadFramesClose(t *testing.T) {
	e := newEnv(t, 1, service.Config{MaxFrame: 1024, MaxBody: 512}, false)
	cases := []struct {
		name string
		typ  websocket.MessageType
		b    []byte
		code int
	}{
		{"oversized frame", websocket.MessageText, bytes.Repeat([]byte("x"), 2048), 1009},
		{"invalid UTF-8", websocket.MessageText, []byte("{\"type\":\"send\",\"conv\":\"d:alice:bob\",\"id\":\"m1\",\"body\":\"\xff\xfe\"}"), 1007},
		{"malformed JSON", websocket.MessageText, []byte(`{"type":"send",`), 1007},
		{"unknown field", websocket.MessageText, []byte(`{"type":"send","conv":"d:alice:bob","id":"m1","body":"x","admin":true}`), 1007},
		{"binary frame", websocket.MessageBinary, []byte{1, 2, 3}, 1003},
		{"unknown type", websocket.MessageText, []byte(`{"type":"shout"}`), 1008},
		{"forged sender", websocket.MessageText, []byte(`{"type":"send","conv":"d:alice:bob","id":"m1","from":"bob","body":"x"}`), 1008},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			alice := e.dial("alice", 0)
			require.NoError(t, alice.c.WriteRaw(context.Background(), c.typ, c.b))
			assert.Equal(t, c.code, alice.closed())
		})
	}
	st, body := e.getHistory("d:alice:bob", "alice", "")
	require.Equal(t, http.StatusOK, st)
	assert.JSONEq(t, `{"messages":[],"before":0}`, string(body), "nothing was stored")
	// The gateway still serves.
	alice := e.dial("alice", 0)
	assert.Equal(t, int64(1), alice.send("d:alice:bob", "ok", "still here").Seq)
}

// Frames a client may get wrong without breaking the protocol are
// answered with an error frame naming the problem; the connection stays.
func TestBadFramesAnswered(t *testing.T) {
	e := newEnv(t, 1, service.Config{MaxBody: 16}, false)
	st, body := e.postJSON(e.urls[0]+"/api/v1/groups", "bob", map[string]any{"id": "team", "members": []string{"carol"}})
	require.Equal(t, http.StatusCreated, st, "%s", body)
	alice := e.dial("alice", 0)
	cases := []struct {
		f    service.Frame
		code string
	}{
		{service.Frame{Type: "send", Conv: "g:nosuch", ID: "a", Body: "x"}, "unknown_conversation"},
		{service.Frame{Type: "send", Conv: "x:y", ID: "b", Body: "x"}, "unknown_conversation"},
		{service.Frame{Type: "send", Conv: "d:bob:alice", ID: "c", Body: "x"}, "unknown_conversation"},
		{service.Frame{Type: "send", Conv: "d:bob:carol", ID: "d", Body: "x"}, "not_member"},
		{service.Frame{Type: "send", Conv: "g:team", ID: "e", Body: "x"}, "not_member"},
		{service.Frame{Type: "send", Conv: "d:alice:bob", ID: "bad id!", Body: "x"}, "bad_id"},
		{service.Frame{Type: "send", Conv: "d:alice:bob", ID: "f", Body: strings.Repeat("x", 17)}, "too_large"},
		{service.Frame{Type: "send", Conv: "d:alice:bob", ID: "g"}, "bad_request"},
		{service.Frame{Type: "send", Conv: "d:alice:bob", ID: "h", Media: "sha256:00"}, "bad_media"},
		{service.Frame{Type: "ack", Conv: "d:alice:bob", Seq: 5}, "bad_seq"},
		{service.Frame{Type: "ack", Conv: "g:team", Seq: 1}, "not_member"},
	}
	for _, c := range cases {
		require.NoError(t, alice.c.Write(context.Background(), c.f))
		f := alice.next("error")
		assert.Equal(t, c.code, f.Code, "%+v: %s", c.f, f.Detail)
	}
	st, body = e.getHistory("d:alice:bob", "alice", "")
	require.Equal(t, http.StatusOK, st)
	assert.JSONEq(t, `{"messages":[],"before":0}`, string(body), "nothing was stored")

	// A replayed acknowledgement is harmless and counted.
	alice.send("d:alice:bob", "ok", "hi")
	alice.ack("d:alice:bob", 1)
	alice.ack("d:alice:bob", 1)
	require.Eventually(t, func() bool { return e.svcs[0].Stats().AcksReplayed == 1 }, 5*time.Second, 10*time.Millisecond)
}

// Over HTTP, bad input gets a 4xx problem+json naming the problem.
func TestBadRequestsHTTP(t *testing.T) {
	e := newEnv(t, 1, service.Config{MaxFrame: 1024}, false)
	u := e.urls[0]
	cases := []struct {
		name, method, path, user, ctype string
		body                            []byte
		status                          int
		code                            string
	}{
		{"no token", "POST", "/api/v1/messages", "", "application/json", []byte(`{}`), 401, "unauthorized"},
		{"malformed JSON", "POST", "/api/v1/messages", "alice", "application/json", []byte(`{"conv":`), 400, "malformed_json"},
		{"invalid UTF-8", "POST", "/api/v1/messages", "alice", "application/json", []byte("{\"conv\":\"d:alice:bob\",\"id\":\"m\",\"body\":\"\xff\"}"), 400, "invalid_utf8"},
		{"oversized", "POST", "/api/v1/messages", "alice", "application/json", bytes.Repeat([]byte(" "), 2048), 413, "too_large"},
		{"forged sender", "POST", "/api/v1/messages", "alice", "application/json", []byte(`{"conv":"d:alice:bob","id":"m","from":"bob","body":"x"}`), 403, "forged_sender"},
		{"unknown conversation", "POST", "/api/v1/messages", "alice", "application/json", []byte(`{"conv":"g:none","id":"m","body":"x"}`), 404, "unknown_conversation"},
		{"ack replayed beyond", "POST", "/api/v1/acks", "alice", "application/json", []byte(`{"conv":"d:alice:bob","seq":9}`), 400, "bad_seq"},
		{"bad key", "PUT", "/api/v1/keys", "alice", "application/json", []byte(`{"public_key":"c2hvcnQ="}`), 400, "bad_key"},
		{"no key", "GET", "/api/v1/keys/zed", "alice", "", nil, 404, "not_found"},
		{"bad group id", "POST", "/api/v1/groups", "alice", "application/json", []byte(`{"id":"a b"}`), 400, "bad_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, h, body := e.call(c.method, u+c.path, c.user, c.ctype, c.body)
			assert.Equal(t, c.status, st, "%s", body)
			assert.Equal(t, c.code, problem(t, h, body))
		})
	}
}
