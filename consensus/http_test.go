package consensus

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type apiCluster struct {
	c       *LocalCluster
	servers map[string]*httptest.Server // node id → its API
	client  *http.Client
}

func newAPICluster(t *testing.T, opts HandlerOptions) *apiCluster {
	t.Helper()
	c := newCluster(t, ClusterOptions{Node: Options{MaxValueSize: 64}})
	ctx := testCtx(t)
	tr := &http.Transport{}
	a := &apiCluster{c: c, servers: map[string]*httptest.Server{}, client: &http.Client{Transport: tr}}
	opts.Client = a.client
	for _, n := range c.Nodes() {
		h, err := NewHandler(n, opts)
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		a.servers[n.ID()] = srv
		t.Cleanup(srv.Close)
	}
	t.Cleanup(tr.CloseIdleConnections)
	a.publish(t, ctx)
	return a
}

// publish records every node's API address in the store and waits until
// every node knows the leader's.
func (a *apiCluster) publish(t *testing.T, ctx context.Context) {
	t.Helper()
	leader, err := a.c.WaitLeader(ctx)
	require.NoError(t, err)
	for id, srv := range a.servers {
		require.NoError(t, leader.SetAPIAddr(ctx, id, srv.Listener.Addr().String()))
	}
	for _, n := range a.c.Nodes() {
		eventually(t, ctx, "API addresses replicated", func() bool { return n.APIAddr(leader.ID()) != "" })
	}
}

func (a *apiCluster) do(t *testing.T, node, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.servers[node].URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := a.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 {
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), string(raw))
	} else {
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), string(raw))
	}
	var out map[string]any
	if strings.HasPrefix(string(raw), "{") {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

func TestHandler_FollowerForwardsToLeader(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	f := followerOf(t, a.c).ID()
	code, body := a.do(t, f, "PUT", "/v1/kv/greeting", `{"value":"hello"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "hello", body["value"])
	code, body = a.do(t, f, "GET", "/v1/kv/greeting", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "hello", body["value"])
	code, body = a.do(t, f, "POST", "/v1/cas/greeting", `{"old":"hello","value":"hi"}`)
	require.Equal(t, http.StatusOK, code, body)
	eventually(t, testCtx(t), "stale read on the follower sees it", func() bool {
		code, body := a.do(t, f, "GET", "/v1/kv/greeting?stale=true", "")
		return code == http.StatusOK && body["value"] == "hi"
	})
	// A stale read is served where it lands; any other goes to the leader.
	for path, forwarded := range map[string]bool{"?stale=1": false, "?stale=true": false, "": true, "?stale=no": true} {
		code, hdr, raw := send(t, a.client, "GET", a.servers[f].URL+"/v1/kv/greeting"+path, "", "")
		require.Equal(t, http.StatusOK, code, raw)
		assert.Equal(t, forwarded, hdr.Get(forwardedHeader) != "", path)
		_, challenged := hdr["Www-Authenticate"]
		assert.False(t, challenged, "%s: no challenge on an answer that has none", path)
	}
	code, body = a.do(t, f, "GET", "/v1/cluster/status", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Len(t, body["servers"], 3)
}

// countForwards counts the requests a follower forwards through it.
type countForwards struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countForwards) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get(forwardedHeader) != "" {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// A follower forwards through the Client the options give.
func TestHandler_ForwardsThroughTheGivenClient(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	counter := &countForwards{rt: a.client.Transport}
	a.client.Transport = counter
	code, body := a.do(t, followerOf(t, a.c).ID(), "PUT", "/v1/kv/k", `{"value":"v"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, int64(1), counter.n.Load())
}

func TestHandler_NoForwardNamesLeader(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{NoForward: true})
	leader, err := a.c.WaitLeader(testCtx(t))
	require.NoError(t, err)
	code, body := a.do(t, followerOf(t, a.c).ID(), "PUT", "/v1/kv/k", `{"value":"v"}`)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, leader.ID(), body["leader_id"])
	assert.Equal(t, strings.TrimPrefix(a.servers[leader.ID()].URL, "http://"), body["leader_api"])
}

func TestHandler_BadRequests(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	l := a.c.Leader().ID()
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed body", "PUT", "/v1/kv/k", `{"value":`, http.StatusBadRequest},
		{"unknown field", "PUT", "/v1/kv/k", `{"valeu":"x"}`, http.StatusBadRequest},
		{"missing value", "PUT", "/v1/kv/k", `{}`, http.StatusBadRequest},
		{"value over limit", "PUT", "/v1/kv/k", `{"value":"` + strings.Repeat("x", 65) + `"}`, http.StatusRequestEntityTooLarge},
		{"body over limit", "PUT", "/v1/kv/k", `{"value":"` + strings.Repeat("x", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
		{"missing key", "GET", "/v1/kv/nope", "", http.StatusNotFound},
		{"CAS on missing key", "POST", "/v1/cas/nope", `{"old":"a","value":"b"}`, http.StatusNotFound},
		{"join self", "POST", "/v1/cluster/join", `{"id":"` + l + `","raft_addr":"x"}`, http.StatusBadRequest},
		{"remove unknown node", "POST", "/v1/cluster/remove", `{"id":"nope"}`, http.StatusNotFound},
		{"lock without owner", "POST", "/v1/lock/l", `{"ttl_ms":1000}`, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.do(t, l, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.want, code, body)
			assert.True(t, strings.HasPrefix(body["error"].(string), "consensus: "), body)
		})
	}
	// Conflicts carry the current state.
	code, _ := a.do(t, l, "PUT", "/v1/kv/k", `{"value":"1"}`)
	require.Equal(t, http.StatusOK, code)
	code, body := a.do(t, l, "POST", "/v1/cas/k", `{"old":"0","value":"2"}`)
	assert.Equal(t, http.StatusConflict, code)
	assert.Equal(t, "1", body["current"].(map[string]any)["value"])
	code, body = a.do(t, l, "POST", "/v1/lock/l", `{"owner":"a","ttl_ms":60000}`)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = a.do(t, l, "POST", "/v1/lock/l", `{"owner":"b","ttl_ms":60000}`)
	assert.Equal(t, http.StatusConflict, code)
	code, _ = a.do(t, l, "POST", "/v1/lock/l/release", `{"owner":"a","token":`+jsonNum(body["token"])+`}`)
	assert.Equal(t, http.StatusOK, code)
	code, _ = a.do(t, l, "DELETE", "/v1/kv/k", "")
	assert.Equal(t, http.StatusOK, code)
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestHandler_JoinRecordsTheAPIAddress(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{})
	ctx := testCtx(t)
	leader, err := a.c.WaitLeader(ctx)
	require.NoError(t, err)
	l := leader.ID()
	code, body := a.do(t, l, "POST", "/v1/cluster/join", `{"id":"n8","raft_addr":"127.0.0.1:1","api_addr":"127.0.0.1:8008","non_voter":true}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = a.do(t, l, "POST", "/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:2","non_voter":true}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "127.0.0.1:8008", leader.APIAddr("n8"))
	assert.Empty(t, leader.APIAddr("n9"))
	for _, id := range []string{"n8", "n9"} {
		require.NoError(t, leader.RemoveServer(ctx, id))
	}
}

// The largest compare-and-swap, old and new values at MaxValueSize, fits
// the request's body limit.
func TestHandler_LargestCASFits(t *testing.T) {
	const max = 16 << 10
	c := newCluster(t, ClusterOptions{Nodes: 1, Node: Options{MaxValueSize: max}})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	h, err := NewHandler(n, HandlerOptions{})
	require.NoError(t, err)
	old, value := strings.Repeat("a", max), strings.Repeat("b", max)
	_, err = n.Put(ctx, "k", []byte(old))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/cas/k", strings.NewReader(`{"old":"`+old+`","value":"`+value+`"}`)))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	kv, err := n.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, value, string(kv.Value))
}
