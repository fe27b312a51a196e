package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
)

// A message from alice reaches bob, connected to another gateway, live
// through Redis pub/sub, with the conversation's next sequence number.
func TestDeliveryAcrossGateways(t *testing.T) {
	e := newEnv(t, 2, service.Config{}, false)
	alice, bob := e.dial("alice", 0), e.dial("bob", 1)
	conv := service.DirectConversation("bob", "alice")
	require.Equal(t, "d:alice:bob", conv)
	for i := 1; i <= 3; i++ {
		sent := alice.send(conv, fmt.Sprintf("m%d", i), fmt.Sprintf("hello %d", i))
		assert.Equal(t, int64(i), sent.Seq)
		assert.False(t, sent.Dup)
		got := bob.nextAfter(int64(i) - 1)
		assert.Equal(t, int64(i), got.Seq)
		assert.Equal(t, "alice", got.From)
		assert.Equal(t, fmt.Sprintf("hello %d", i), got.Body)
		bob.ack(conv, got.Seq)
	}
	// The sender's own connection gets its messages too (its other devices would).
	for i := 1; i <= 3; i++ {
		assert.Equal(t, int64(i), alice.nextAfter(int64(i)-1).Seq)
	}
	assert.Equal(t, uint64(3), e.svcs[0].Stats().MessagesIn)
}

// A message that stays unacknowledged is sent again (at-least-once); once
// acknowledged it is not, and a reconnecting client gets only what it
// has not acknowledged.
func TestRedeliveryOfUnacked(t *testing.T) {
	e := newEnv(t, 1, service.Config{RedeliverAfter: 100 * time.Millisecond}, false)
	alice, bob := e.dial("alice", 0), e.dial("bob", 0)
	conv := "d:alice:bob"
	alice.send(conv, "m1", "one")
	first := bob.next("msg")
	again := bob.next("msg")
	assert.Equal(t, first.Seq, again.Seq, "the unacknowledged message comes again")
	assert.Equal(t, first.ID, again.ID)
	assert.GreaterOrEqual(t, e.svcs[0].Stats().Redeliveries, uint64(1))
	bob.ack(conv, first.Seq)
	alice.send(conv, "m2", "two")
	require.Equal(t, int64(2), bob.next("msg").Seq)
	require.NoError(t, bob.c.Close())

	bob = e.dial("bob", 0)
	assert.Equal(t, int64(1), bob.acked[conv], "hello carries the acknowledged sequence")
	got := bob.next("msg")
	assert.Equal(t, int64(2), got.Seq, "only the unacknowledged message is synced")
	bob.ack(conv, 2)
}

// Exactly-once effect: a message resent with the same client ID (its
// reply was lost) is stored once and keeps its sequence number. In
// at-least-once mode it is stored again.
func TestResendExactlyOnceAndAtLeastOnce(t *testing.T) {
	for _, mode := range []string{service.ExactlyOnce, service.AtLeastOnce} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, 1, service.Config{Delivery: mode}, false)
			alice := e.dial("alice", 0)
			conv := "d:alice:bob"
			a := alice.send(conv, "m1", "once")
			b := alice.send(conv, "m1", "once")
			st, body := e.getHistory(conv, "alice", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			var h service.History
			require.NoError(t, json.Unmarshal(body, &h))
			if mode == service.ExactlyOnce {
				assert.True(t, b.Dup)
				assert.Equal(t, a.Seq, b.Seq)
				assert.Len(t, h.Messages, 1)
				assert.Equal(t, uint64(1), e.svcs[0].Stats().DuplicatesDropped)
			} else {
				assert.False(t, b.Dup)
				assert.Equal(t, a.Seq+1, b.Seq)
				assert.Len(t, h.Messages, 2)
			}
		})
	}
}

func (e *env) getHistory(conv, user, query string) (int, []byte) {
	st, _, b := e.call("GET", e.urls[0]+"/api/v1/conversations/"+conv+"/messages"+query, user, "", nil)
	return st, b
}

// Messages sent while bob is offline wait in his inbox and arrive in
// order when he connects; history pages backwards.
func TestOfflineSyncAndHistory(t *testing.T) {
	e := newEnv(t, 2, service.Config{}, false)
	alice := e.dial("alice", 0)
	conv := "d:alice:bob"
	for i := 1; i <= 7; i++ {
		alice.send(conv, fmt.Sprintf("m%d", i), fmt.Sprintf("body %d", i))
	}
	bob := e.dial("bob", 1)
	for i := 1; i <= 7; i++ {
		assert.Equal(t, int64(i), bob.next("msg").Seq)
	}
	bob.ack(conv, 7)

	st, body := e.getHistory(conv, "bob", "?limit=3")
	require.Equal(t, http.StatusOK, st, "%s", body)
	var h service.History
	require.NoError(t, json.Unmarshal(body, &h))
	require.Len(t, h.Messages, 3)
	assert.Equal(t, []int64{5, 6, 7}, seqs(h.Messages))
	assert.Equal(t, int64(5), h.Before)
	_, body = e.getHistory(conv, "bob", fmt.Sprintf("?limit=10&before=%d", h.Before))
	require.NoError(t, json.Unmarshal(body, &h))
	assert.Equal(t, []int64{1, 2, 3, 4}, seqs(h.Messages))
	assert.Zero(t, h.Before, "the first page says there is no more")
	st, body = e.getHistory(conv, "carol", "")
	assert.Equal(t, http.StatusForbidden, st, "%s", body)
	st, _ = e.getHistory(conv, "bob", "?limit=0")
	assert.Equal(t, http.StatusBadRequest, st)
}

func seqs(fs []service.Frame) []int64 {
	out := make([]int64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

// Small groups are fanned out on write (an inbox copy per member), large
// ones at read time (one live broadcast, synced from the group's log);
// members receive every message either way, and offline members sync.
func TestGroupsFanOutOnWriteAndRead(t *testing.T) {
	e := newEnv(t, 2, service.Config{FanOutLimit: 3}, false)
	members := []string{"bob", "carol"}
	st, body := e.postJSON(e.urls[0]+"/api/v1/groups", "alice", map[string]any{"id": "small", "members": members})
	require.Equal(t, http.StatusCreated, st, "%s", body)
	st, body = e.postJSON(e.urls[0]+"/api/v1/groups", "alice", map[string]any{"id": "large", "members": []string{"bob", "carol", "dave"}})
	require.Equal(t, http.StatusCreated, st, "%s", body)
	st, _ = e.postJSON(e.urls[0]+"/api/v1/groups", "bob", map[string]any{"id": "small"})
	assert.Equal(t, http.StatusConflict, st)

	alice, bob := e.dial("alice", 0), e.dial("bob", 1)
	alice.send("g:small", "s1", "to the small group")
	alice.send("g:large", "l1", "to the large group")
	got := map[string]int64{}
	for len(got) < 2 { // a message may come twice (live and synced): it is the same seq
		f := bob.next("msg")
		got[f.Conv] = f.Seq
		bob.ack(f.Conv, f.Seq)
	}
	assert.Equal(t, map[string]int64{"g:small": 1, "g:large": 1}, got)
	st0, st1 := e.svcs[0].Stats(), e.svcs[1].Stats()
	assert.Equal(t, uint64(3), st0.FannedOutWrite, "one inbox copy per member of the small group")
	assert.Equal(t, uint64(1), st0.FannedOutRead, "one write for the large group")
	assert.Zero(t, st1.FannedOutWrite)

	// dave was offline: he syncs the large group from its log.
	dave := e.dial("dave", 1)
	f := dave.next("msg")
	assert.Equal(t, "g:large", f.Conv)
	assert.Equal(t, "to the large group", f.Body)
}
