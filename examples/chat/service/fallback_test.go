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

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// sse is a Server-Sent Events client.
type sse struct {
	t    testing.TB
	sc   *bufio.Scanner
	stop func()
}

func (e *env) events(user string, i int) *sse {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.urls[i]+"/api/v1/events", nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+e.token(user))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	require.Equal(e.t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sse{t: e.t, sc: bufio.NewScanner(resp.Body), stop: func() { cancel(); _ = resp.Body.Close() }}
	e.t.Cleanup(s.stop)
	return s
}

// next returns the next event's frame.
func (s *sse) next() service.Frame {
	s.t.Helper()
	for s.sc.Scan() {
		if data, ok := strings.CutPrefix(s.sc.Text(), "data: "); ok {
			var f service.Frame
			require.NoError(s.t, json.Unmarshal([]byte(data), &f))
			return f
		}
	}
	require.FailNow(s.t, "event stream ended", "%v", s.sc.Err())
	return service.Frame{}
}

// Where WebSockets cannot pass, a client receives over SSE and sends and
// acknowledges with POST, with the same guarantees.
func TestSSEAndPostFallback(t *testing.T) {
	e := newEnv(t, 1, service.Config{RedeliverAfter: 200 * time.Millisecond}, false)
	bob := e.events("bob", 0)
	require.Equal(t, "hello", bob.next().Type)
	st, body := e.postJSON(e.urls[0]+"/api/v1/messages", "alice", service.Frame{Conv: "d:alice:bob", ID: "p1", Body: "over POST"})
	require.Equal(t, http.StatusOK, st, "%s", body)
	var sent service.Frame
	require.NoError(t, json.Unmarshal(body, &sent))
	assert.Equal(t, "sent", sent.Type)
	assert.Equal(t, int64(1), sent.Seq)
	got := bob.next()
	assert.Equal(t, "msg", got.Type)
	assert.Equal(t, "over POST", got.Body)
	st, body = e.postJSON(e.urls[0]+"/api/v1/acks", "bob", map[string]any{"conv": "d:alice:bob", "seq": got.Seq})
	require.Equal(t, http.StatusNoContent, st, "%s", body)

	// The same message ID again: stored once.
	st, body = e.postJSON(e.urls[0]+"/api/v1/messages", "alice", service.Frame{Conv: "d:alice:bob", ID: "p1", Body: "over POST"})
	require.Equal(t, http.StatusOK, st)
	require.NoError(t, json.Unmarshal(body, &sent))
	assert.True(t, sent.Dup)
	assert.Equal(t, int64(1), sent.Seq)

	// Bob's reply over POST; his stream carries it too, until acknowledged.
	st, _ = e.postJSON(e.urls[0]+"/api/v1/messages", "bob", service.Frame{Conv: "d:alice:bob", ID: "p2", Body: "back"})
	require.Equal(t, http.StatusOK, st)
	seen := 0
	for seen < 2 {
		f := bob.next()
		if f.Seq == 1 {
			continue // a redelivery from before bob's ack was handled
		}
		assert.Equal(t, int64(2), f.Seq)
		seen++ // the second time: redelivered while unacknowledged
	}
}

// Per-connection and per-user limits: over the WebSocket an error frame
// with a retry delay, over HTTP a 429 with the IETF RateLimit headers.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, 1, service.Config{
		ConnLimit: ratelimit.Limit{Events: 1, Per: time.Hour, Burst: 2},
		UserLimit: ratelimit.Limit{Events: 1, Per: time.Hour, Burst: 3},
	}, false)
	alice := e.dial("alice", 0)
	alice.send("d:alice:bob", "a1", "1")
	alice.send("d:alice:bob", "a2", "2")
	require.NoError(t, alice.c.Send(context.Background(), "d:alice:bob", "a3", "3"))
	f := alice.next("error")
	assert.Equal(t, "rate_limited", f.Code)
	assert.Positive(t, f.RetryMS)

	// A new connection has its own limit, but the user's is nearly spent.
	alice2 := e.dial("alice", 0)
	require.NoError(t, alice2.c.Send(context.Background(), "d:alice:bob", "a4", "4"))
	f = alice2.next("error")
	assert.Equal(t, "rate_limited", f.Code, "the user's limit (3) was spent by 2 sends and 1 refused")

	st, h, body := e.call("POST", e.urls[0]+"/api/v1/messages", "alice", "application/json", []byte(`{"conv":"d:alice:bob","id":"a5","body":"5"}`))
	assert.Equal(t, http.StatusTooManyRequests, st, "%s", body)
	assert.NotEmpty(t, h.Get("RateLimit"), "IETF RateLimit header")
	assert.NotEmpty(t, h.Get("Retry-After"))
	assert.GreaterOrEqual(t, e.svcs[0].Stats().RateLimited, uint64(3))
}
