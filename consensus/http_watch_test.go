package consensus

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sseMessage is one server-sent event.
type sseMessage struct {
	id, event string
	data      []byte
}

// openWatch starts an SSE watch on node and returns a function that reads
// the next message.
func openWatch(t *testing.T, ctx context.Context, a *apiCluster, node, path, lastID string) (*http.Response, func() sseMessage) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", a.servers[node].URL+path, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := a.client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	return resp, func() sseMessage {
		t.Helper()
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				return m
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = []byte(line[6:])
			}
		}
		t.Fatalf("watch stream ended: %v", sc.Err())
		return m
	}
}

func TestHandler_LeasesAndWatchOverServerSentEvents(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	ctx := testCtx(t)
	f := followerOf(t, a.c).ID()

	code, body := a.do(t, f, "POST", "/v1/lease", `{"ttl_ms":60000}`)
	require.Equal(t, http.StatusOK, code, body)
	id := jsonNum(body["id"])
	code, body = a.do(t, f, "PUT", "/v1/kv/svc/a", `{"value":"1","lease":`+id+`}`)
	require.Equal(t, http.StatusOK, code, body)
	rev := uint64(body["revision"].(float64))
	assert.Equal(t, id, jsonNum(body["lease"]))

	// A follower's stale read waits for the write's revision first.
	code, body = a.do(t, f, "GET", fmt.Sprintf("/v1/kv/svc/a?stale=true&min_revision=%d", rev), "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "1", body["value"])

	// A watch on a follower, from the write's revision.
	resp, next := openWatch(t, ctx, a, f, fmt.Sprintf("/v1/watch/svc/?prefix=true&from=%d", rev), "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	m := next()
	assert.Equal(t, strconv.FormatUint(rev, 10), m.id)
	assert.Equal(t, "events", m.event)
	var evs []eventJSON
	require.NoError(t, json.Unmarshal(m.data, &evs))
	require.Len(t, evs, 1)
	assert.Equal(t, eventJSON{Type: "put", KV: kvJSON{Key: "svc/a", Value: "1", Revision: rev, CreateRevision: rev, Version: 1, Lease: LeaseID(mustUint(t, id))}}, evs[0])

	code, body = a.do(t, f, "POST", "/v1/lease/"+id+"/keepalive", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, float64(60000), body["ttl_ms"])
	code, body = a.do(t, f, "PUT", "/v1/kv/svc/b", `{"value":"2","lease":`+id+`}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = a.do(t, f, "DELETE", "/v1/lease/"+id, "")
	require.Equal(t, http.StatusOK, code, body)
	m = next()
	require.NoError(t, json.Unmarshal(m.data, &evs))
	require.Len(t, evs, 1)
	assert.Equal(t, "svc/b", evs[0].KV.Key)
	putB := m.id
	m = next()
	require.NoError(t, json.Unmarshal(m.data, &evs))
	require.Len(t, evs, 2, "the revocation deletes both keys in one message")
	assert.Equal(t, "delete", evs[0].Type)
	assert.Equal(t, m.id, strconv.FormatUint(evs[1].KV.Revision, 10))

	// A client that reconnects elsewhere with Last-Event-ID resumes after
	// it: the next message is the revocation again, nothing before it.
	_, resumed := openWatch(t, ctx, a, a.c.Leader().ID(), "/v1/watch/svc/?prefix=true", putB)
	again := resumed()
	assert.Equal(t, m.id, again.id)
	assert.Equal(t, m.data, again.data)

	// A list carries the revision to watch from.
	lreq, err := http.NewRequestWithContext(ctx, "GET", a.servers[f].URL+"/v1/kv?prefix=svc/&stale=true", nil)
	require.NoError(t, err)
	lresp, err := a.client.Do(lreq)
	require.NoError(t, err)
	lresp.Body.Close()
	assert.GreaterOrEqual(t, mustUint(t, lresp.Header.Get(revisionHeader)), mustUint(t, m.id))
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err, s)
	return v
}

func TestHandler_LeaseAndWatchBadInputIsAProblem(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	ctx := testCtx(t)
	l := a.c.Leader().ID()
	leader := a.c.Node(l)
	require.NoError(t, leader.Compact(ctx, leader.Stats().AppliedIndex))
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"zero TTL", "POST", "/v1/lease", `{"ttl_ms":0}`, http.StatusBadRequest},
		{"TTL under the minimum", "POST", "/v1/lease", `{"ttl_ms":1}`, http.StatusBadRequest},
		{"malformed lease body", "POST", "/v1/lease", `{"ttl_ms":"x"}`, http.StatusBadRequest},
		{"lease id not a number", "POST", "/v1/lease/abc/keepalive", "", http.StatusBadRequest},
		{"keep-alive of an unknown lease", "POST", "/v1/lease/999999/keepalive", "", http.StatusNotFound},
		{"revoke of an unknown lease", "DELETE", "/v1/lease/999999", "", http.StatusNotFound},
		{"write with an unknown lease", "PUT", "/v1/kv/k", `{"value":"v","lease":999999}`, http.StatusNotFound},
		{"write with a malformed lease", "PUT", "/v1/kv/k", `{"value":"v","lease":"x"}`, http.StatusBadRequest},
		{"watch from a future revision", "GET", "/v1/watch/k?from=999999", "", http.StatusBadRequest},
		{"watch from a compacted revision", "GET", "/v1/watch/k?from=1", "", http.StatusGone},
		{"watch from a malformed revision", "GET", "/v1/watch/k?from=x", "", http.StatusBadRequest},
		{"watch of the empty key", "GET", "/v1/watch/", "", http.StatusBadRequest},
		{"read with a malformed min_revision", "GET", "/v1/kv/k?stale=true&min_revision=x", "", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.do(t, l, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.want, code, body)
			assert.Equal(t, float64(tc.want), body["status"], body)
			assert.Equal(t, http.StatusText(tc.want), body["title"], body)
			assert.True(t, strings.HasPrefix(body["detail"].(string), "consensus: "), body)
		})
	}
	_, err := leader.Get(ctx, "k")
	require.ErrorIs(t, err, ErrKeyNotFound, "no bad request wrote anything")
	req, err := http.NewRequestWithContext(ctx, "GET", a.servers[l].URL+"/v1/watch/k", nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", "nope")
	resp, err := a.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
}

// A watch that ends on the node's side (here the node crashes) ends its
// stream with an error event carrying the problem, so the client knows to
// reconnect elsewhere rather than wait.
func TestHandler_WatchEndsWithAnErrorEvent(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	ctx := testCtx(t)
	f := followerOf(t, a.c).ID()
	resp, next := openWatch(t, ctx, a, f, "/v1/watch/k", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, a.c.Crash(f))
	m := next()
	assert.Equal(t, "error", m.event)
	var p errorJSON
	require.NoError(t, json.Unmarshal(m.data, &p), string(m.data))
	assert.Equal(t, http.StatusServiceUnavailable, p.Status)
	assert.Contains(t, p.Detail, "closed")
}
