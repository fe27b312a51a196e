package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
)

// faultHook fails or holds chosen Redis commands of the gateways.
type faultHook struct {
	failPublish  atomic.Bool
	failPresence atomic.Bool // renewals of presence
	// holdRemoval holds the next removal of a user's presence: held is
	// told when it is held, release lets it run, done is closed after.
	holdRemoval         atomic.Bool
	held, release, done chan struct{}
}

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.failPublish.Load() && cmd.Name() == "publish" {
			cmd.SetErr(errors.New("injected: publish failed"))
			return cmd.Err()
		}
		if isPresenceRemoval(cmd) && h.holdRemoval.CompareAndSwap(true, false) {
			h.held <- struct{}{}
			<-h.release
			err := next(ctx, cmd)
			close(h.done)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.failPublish.Load() && slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "publish" }) ||
			h.failPresence.Load() && slices.ContainsFunc(cmds, isPresenceRenewal) {
			err := errors.New("injected: publish failed")
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// isPresenceRenewal reports a gateway's write of a user's presence.
func isPresenceRenewal(cmd redis.Cmder) bool {
	k, ok := cmd.Args()[1].(string)
	return cmd.Name() == "zadd" && ok && strings.HasSuffix(k, "}:presence")
}

// isPresenceRemoval reports the script that removes a gateway from a
// user's presence (the only script on a presence key).
func isPresenceRemoval(cmd redis.Cmder) bool {
	if n := cmd.Name(); n != "evalsha" && n != "eval" {
		return false
	}
	return slices.ContainsFunc(cmd.Args(), func(a any) bool {
		s, ok := a.(string)
		return ok && strings.HasSuffix(s, "}:presence")
	})
}

// A message stored while its live publication fails is not "sent": the
// recipient is connected and up to date, so nothing else would make its
// gateway look at its queue. The resend with the same ID is stored once
// and reaches the recipient.
func TestFailedPublishIsAFailedSend(t *testing.T) {
	h := &faultHook{}
	e := newEnv(t, 2, service.Config{}, false, h)
	alice, bob := e.dial("alice", 0), e.dial("bob", 1)
	conv := "d:alice:bob"

	h.failPublish.Store(true)
	require.NoError(t, alice.c.Send(context.Background(), conv, "m1", "hello"))
	f := alice.next2("sent", "error")
	require.Equal(t, "error", f.Type, "a message whose live publication failed was reported sent")
	assert.Equal(t, "unavailable", f.Code)
	assert.Equal(t, "m1", f.ID)

	h.failPublish.Store(false)
	sent := alice.send(conv, "m1", "hello")
	assert.Equal(t, int64(1), sent.Seq)
	assert.True(t, sent.Dup, "the resend finds the stored message")
	got := bob.next("msg")
	assert.Equal(t, "m1", got.ID)
	assert.Equal(t, int64(1), got.Seq)

	st, body := e.getHistory(conv, "alice", "")
	require.Equal(t, http.StatusOK, st)
	var hist service.History
	require.NoError(t, json.Unmarshal(body, &hist))
	assert.Equal(t, []int64{1}, seqs(hist.Messages), "stored once")
}

// A user's old connection ends (its gateway removes the user's presence)
// while a new connection of the same user registers on the same gateway:
// the new connection still gets what is sent to the user.
func TestReconnectWhilePresenceIsRemoved(t *testing.T) {
	h := &faultHook{held: make(chan struct{}, 1), release: make(chan struct{}), done: make(chan struct{})}
	e := newEnv(t, 2, service.Config{}, false, h)
	alice := e.dial("alice", 0)
	old := e.dial("bob", 1)
	h.holdRemoval.Store(true)
	require.NoError(t, old.c.CloseNow())
	<-h.held // the old connection's presence removal waits
	bob := e.dial("bob", 1)
	close(h.release)
	<-h.done
	conv := "d:alice:bob"
	alice.send(conv, "m1", "after the reconnect")
	got := bob.next("msg")
	assert.Equal(t, "m1", got.ID)
}

// Presence renewals of one gateway fail for longer than the presence
// lives (its Redis is slow or down for them): messages published
// meanwhile reach it no more. Once a renewal succeeds again, every
// connection on it syncs, and the message arrives.
func TestLapsedPresenceSyncs(t *testing.T) {
	ttl := 300 * time.Millisecond
	e := newEnv(t, 1, service.Config{PresenceTTL: ttl}, false)
	h := &faultHook{}
	hooked := redis.NewClient(&redis.Options{Addr: e.db.Addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = hooked.Close() })
	hooked.AddHook(h)
	e.start(service.Config{Redis: hooked, PresenceTTL: ttl, BreakerOpen: 100 * time.Millisecond})
	alice, bob := e.dial("alice", 0), e.dial("bob", 1)

	h.failPresence.Store(true)
	presence := e.db.Prefix + "{u:bob}:presence"
	require.Eventually(t, func() bool {
		n, err := e.db.Client.Exists(context.Background(), presence).Result()
		require.NoError(t, err)
		return n == 0
	}, 5*time.Second, 20*time.Millisecond, "bob's presence expires")
	alice.send("d:alice:bob", "m1", "while bob's presence lapsed")

	h.failPresence.Store(false)
	got := bob.next("msg")
	assert.Equal(t, "m1", got.ID)
}

// Requests are counted under the route pattern that served them, behind
// the security middleware that copies each request.
func TestMetricsCountRoutes(t *testing.T) {
	e := newEnv(t, 1, service.Config{}, false)
	st, _ := e.getHistory("d:alice:bob", "alice", "")
	require.Equal(t, http.StatusOK, st)
	st, _, body := e.call("GET", e.urls[0]+"/metrics", "alice", "", nil)
	require.Equal(t, http.StatusOK, st)
	assert.Contains(t, string(body), `chat_http_requests_total{code="200",route="GET /api/v1/conversations/{conv}/messages"} 1`)
}
