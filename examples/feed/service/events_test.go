package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
)

// sse reads a Server-Sent Events stream's events.
type sse struct {
	sc *bufio.Scanner
}

func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	var event, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && event != "":
			return event, data
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", ""
}

// A connected user is told of each new post of a followee and of each
// post that mentions them, and of nothing else; the token may come in the
// query, as a browser's EventSource must send it.
func TestEvents(t *testing.T) {
	e := newEnv(t, nil, service.Config{}, false)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.user(u)
	}
	e.follow("alice", "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := e.tokens.Issue("alice", time.Hour)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/users/alice/events?access_token="+tok, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sse{sc: bufio.NewScanner(resp.Body)}
	ev, _ := s.next(t)
	require.Equal(t, "ready", ev)

	e.post("carol", "not for alice")
	e.post("alice", "her own post")
	p := e.post("bob", "from a followee")
	m := e.post("carol", "hello @alice!")
	for _, want := range []struct {
		event string
		post  service.Post
	}{{"post", p}, {"mention", m}} {
		ev, data := s.next(t)
		assert.Equal(t, want.event, ev)
		var got service.Event
		require.NoError(t, json.Unmarshal([]byte(data), &got))
		assert.Equal(t, want.event, got.Type)
		assert.Equal(t, want.post.ID, got.Post.ID, "carol's other post and alice's own are not sent")
	}
	cancel()

	code, b, _ := e.do("bob", "GET", "/api/v1/users/alice/events", nil)
	assert.Equal(t, http.StatusForbidden, code, "%s", b)
}

// Close ends the open streams, so the server's shutdown does not wait
// for them.
func TestCloseEndsEvents(t *testing.T) {
	e := newEnv(t, nil, service.Config{}, false)
	e.user("alice")
	tok, err := e.tokens.Issue("alice", time.Hour)
	require.NoError(t, err)
	req, err := http.NewRequest("GET", e.url+"/api/v1/users/alice/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	s := &sse{sc: bufio.NewScanner(resp.Body)}
	ev, _ := s.next(t)
	require.Equal(t, "ready", ev)
	require.NoError(t, e.svc.Close(t.Context()))
	for s.sc.Scan() {
	}
	assert.NoError(t, s.sc.Err(), "the stream ended cleanly")
}
