package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// While Redis is down the gateway keeps its connections and refuses
// sends with "unavailable" and a retry delay (the breaker answers at once
// after three failures); nothing is half-stored. When Redis is back, the
// client's resend with the same ID is stored once and delivered, and the
// recipient's gateway, whose subscription was cut, syncs what it missed.
func TestRedisOutage(t *testing.T) {
	e := newEnv(t, 2, service.Config{RedisTimeout: 200 * time.Millisecond, BreakerOpen: 200 * time.Millisecond}, true)
	alice, bob := e.dial("alice", 0), e.dial("bob", 1)
	conv := "d:alice:bob"
	alice.send(conv, "before", "before the outage")
	bob.ack(conv, bob.next("msg").Seq)

	e.proxy.Cut()
	for range 4 {
		require.NoError(t, alice.c.Send(context.Background(), conv, "during", "sent during the outage"))
		f := alice.next("error")
		assert.Equal(t, "unavailable", f.Code)
		assert.Positive(t, f.RetryMS)
	}
	assert.Equal(t, resilience.StateOpen, e.svcs[0].Stats().Breaker)
	st, h, body := e.call("POST", e.urls[0]+"/api/v1/messages", "alice", "application/json", []byte(`{"conv":"d:alice:bob","id":"during","body":"x"}`))
	assert.Equal(t, http.StatusServiceUnavailable, st)
	assert.Equal(t, "unavailable", problem(t, h, body))
	assert.NotEmpty(t, h.Get("Retry-After"))
	require.NoError(t, alice.c.Write(context.Background(), service.Frame{Type: "ping"}))
	alice.next("pong") // the connection lives

	e.proxy.Restore()
	var sent service.Frame
	require.Eventually(t, func() bool {
		require.NoError(t, alice.c.Send(context.Background(), conv, "during", "sent during the outage"))
		f := alice.next2("sent", "error")
		sent = f
		return f.Type == "sent"
	}, 10*time.Second, 100*time.Millisecond, "a resend succeeds once Redis is back")
	assert.Equal(t, int64(2), sent.Seq)
	got := bob.nextAfter(1) // "before" may come again: it was both sent live and synced
	assert.Equal(t, "during", got.ID)
	assert.Equal(t, int64(2), got.Seq)

	st, body = e.getHistory(conv, "alice", "")
	require.Equal(t, http.StatusOK, st)
	var hist service.History
	require.NoError(t, json.Unmarshal(body, &hist))
	assert.Equal(t, []int64{1, 2}, seqs(hist.Messages), "stored once")
}

// next2 returns the next frame of either type.
func (w *ws) next2(a, b string) service.Frame {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		f, err := w.c.Read(ctx)
		require.NoError(w.t, err)
		if f.Type == a || f.Type == b {
			return f
		}
		w.buf = append(w.buf, f)
	}
}
