package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
)

// serveCluster puts a registry Handler in front of every node and
// publishes the addresses, as a registry deployment does.
func serveCluster(t *testing.T, ctx context.Context, c *consensus.LocalCluster) (map[string]*httptest.Server, []string) {
	t.Helper()
	return serveClusterWith(t, ctx, c, registry.HandlerOptions{})
}

func serveClusterWith(t *testing.T, ctx context.Context, c *consensus.LocalCluster, opts registry.HandlerOptions) (map[string]*httptest.Server, []string) {
	t.Helper()
	servers := map[string]*httptest.Server{}
	var urls []string
	for _, n := range c.Nodes() {
		h, err := registry.NewHandler(newRegistry(t, n), opts)
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		servers[n.ID()] = srv
		urls = append(urls, srv.URL)
	}
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	for id, srv := range servers {
		require.NoError(t, l.SetAPIAddr(ctx, id, strings.TrimPrefix(srv.URL, "http://")))
	}
	for _, n := range c.Nodes() {
		eventually(t, ctx, "addresses replicated", func() bool { return n.APIAddr(l.ID()) != "" })
	}
	return servers, urls
}

func TestHandler_BadInputIsAProblemAndChangesNothing(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	servers, _ := serveCluster(t, ctx, c)
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	base := servers[l.ID()].URL
	do := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if resp.StatusCode >= 400 {
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			assert.Equal(t, float64(resp.StatusCode), out["status"], string(raw))
			assert.True(t, strings.HasPrefix(out["detail"].(string), "registry: "), string(raw))
		}
		return resp.StatusCode, out
	}
	code, body := do("PUT", "/v1/services/api/instances/a", `{"addr":"10.0.0.1:80","ttl_ms":60000}`)
	require.Equal(t, http.StatusOK, code, body)
	lease := fmt.Sprint(body["lease"])
	// A follower forwards writes and linearizable lists to the leader.
	base = servers[follower(t, ctx, c).ID()].URL
	code, body = do("PUT", "/v1/services/api/instances/f", `{"addr":"10.0.0.5:80","ttl_ms":60000}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = do("GET", "/v1/services/api", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Len(t, body["instances"], 2)
	code, _ = do("DELETE", "/v1/services/api/instances/f", "")
	require.Equal(t, http.StatusOK, code)
	base = servers[l.ID()].URL

	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed JSON", "PUT", "/v1/services/api/instances/b", `{"addr":`, http.StatusBadRequest},
		{"unknown field", "PUT", "/v1/services/api/instances/b", `{"adr":"x:1","ttl_ms":60000}`, http.StatusBadRequest},
		{"trailing data", "PUT", "/v1/services/api/instances/b", `{"addr":"x:1","ttl_ms":60000} {}`, http.StatusBadRequest},
		{"wrong type", "PUT", "/v1/services/api/instances/b", `{"addr":"x:1","ttl_ms":"long"}`, http.StatusBadRequest},
		{"body too large", "PUT", "/v1/services/api/instances/b", `{"addr":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
		{"zero TTL", "PUT", "/v1/services/api/instances/b", `{"addr":"x:1","ttl_ms":0}`, http.StatusBadRequest},
		{"TTL below the minimum", "PUT", "/v1/services/api/instances/b", `{"addr":"x:1","ttl_ms":10}`, http.StatusBadRequest},
		{"empty address", "PUT", "/v1/services/api/instances/b", `{"ttl_ms":60000}`, http.StatusBadRequest},
		{"duplicate id, other address", "PUT", "/v1/services/api/instances/a", `{"addr":"10.0.0.9:80","ttl_ms":60000}`, http.StatusConflict},
		{"heartbeat of an unknown lease", "POST", "/v1/registrations/987654/heartbeat", "", http.StatusNotFound},
		{"heartbeat of a malformed lease", "POST", "/v1/registrations/abc/heartbeat", "", http.StatusBadRequest},
		{"deregister unknown", "DELETE", "/v1/services/api/instances/zz", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.body)
			assert.Equal(t, tc.want, code, body)
		})
	}
	code, body = do("GET", "/v1/services/api", "")
	require.Equal(t, http.StatusOK, code)
	insts := body["instances"].([]any)
	require.Len(t, insts, 1, "nothing but the first registration")
	assert.Equal(t, "10.0.0.1:80", insts[0].(map[string]any)["addr"])
	code, _ = do("POST", "/v1/registrations/"+lease+"/heartbeat", "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = do("DELETE", "/v1/services/api/instances/a", "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = do("POST", "/v1/registrations/"+lease+"/heartbeat", "")
	assert.Equal(t, http.StatusNotFound, code, "deregistered")
}

// A Client registers through any node, follows a watch from a follower,
// and both survive the registry leader's crash.
func TestClient_RegistersAndWatchesThroughALeaderCrash(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	servers, urls := serveCluster(t, ctx, c)
	_, err := registry.NewClient(nil, registry.ClientOptions{})
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = registry.NewClient([]string{"10.0.0.1:80"}, registry.ClientOptions{})
	require.ErrorIs(t, err, registry.ErrInvalid)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cl, err := registry.NewClient(urls, registry.ClientOptions{HTTP: &http.Client{Transport: tr}, RetryWait: 10 * time.Millisecond})
	require.NoError(t, err)

	reg, err := cl.Register(ctx, registry.Instance{Service: "api", ID: "a", Addr: "10.0.0.1:80", Zone: "z1", Meta: map[string]string{"v": "1"}}, ttl)
	require.NoError(t, err)
	_, err = cl.Register(ctx, registry.Instance{Service: "api", ID: "a", Addr: "10.0.0.2:80"}, ttl)
	require.ErrorIs(t, err, registry.ErrDuplicateInstance)
	_, err = cl.Register(ctx, registry.Instance{Service: "api", ID: "b", Addr: "10.0.0.2:80"}, time.Millisecond)
	require.ErrorIs(t, err, registry.ErrInvalid)
	require.ErrorIs(t, cl.Heartbeat(ctx, 987654), registry.ErrNotRegistered)

	var (
		mu   sync.Mutex
		seen [][]string
	)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- cl.Watch(wctx, "api", func(insts []registry.Instance) {
			var ids []string
			for _, i := range insts {
				ids = append(ids, i.ID)
			}
			mu.Lock()
			seen = append(seen, ids)
			mu.Unlock()
		})
	}()
	latest := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return "none"
		}
		return fmt.Sprint(seen[len(seen)-1])
	}
	eventually(t, ctx, "the watch lists a", func() bool { return latest() == "[a]" })

	// Crash the leader and its API; heartbeats and a new registration go
	// through the next leader, and the watch (whatever node it was on) sees
	// the new instance.
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	servers[old.ID()].CloseClientConnections()
	require.NoError(t, c.Crash(old.ID()))
	require.NoError(t, cl.Heartbeat(ctx, reg.Lease))
	_, err = cl.Register(ctx, registry.Instance{Service: "api", ID: "b", Addr: "10.0.0.2:80"}, ttl)
	require.NoError(t, err)
	eventually(t, ctx, "the watch lists a and b", func() bool { return latest() == "[a b]" })
	insts, _, err := cl.List(ctx, "api")
	require.NoError(t, err)
	require.Len(t, insts, 2)
	assert.Equal(t, "z1", insts[0].Zone)

	require.NoError(t, cl.Deregister(ctx, "api", "b"))
	eventually(t, ctx, "b leaves the watch", func() bool { return latest() == "[a]" })
	stop()
	require.ErrorIs(t, <-done, context.Canceled)
}

// A follower answers ?stale=true or ?stale=1 lists from its own copy, with
// no need of the leader; any other list goes to the leader.
func TestHandler_StaleListsAnswerOnTheFollower(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	servers, _ := serveCluster(t, ctx, c)
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	get := func(base, path string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, servers[l.ID()].URL+"/v1/services/api/instances/a",
		strings.NewReader(`{"addr":"10.0.0.1:80","ttl_ms":60000}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	base := servers[follower(t, ctx, c).ID()].URL
	eventually(t, ctx, "the follower holds a", func() bool {
		_, body := get(base, "/v1/services/api?stale=true")
		return strings.Contains(body, `"10.0.0.1:80"`)
	})
	servers[l.ID()].Close() // the leader's API goes away; Raft stays up
	for _, q := range []string{"?stale=true", "?stale=1"} {
		code, body := get(base, "/v1/services/api"+q)
		assert.Equal(t, http.StatusOK, code, q)
		assert.Contains(t, body, `"10.0.0.1:80"`, q)
	}
	for _, q := range []string{"", "?stale=false", "?stale=yes"} {
		code, body := get(base, "/v1/services/api"+q)
		assert.Equal(t, http.StatusServiceUnavailable, code, q)
		assert.Contains(t, body, `"leader_api":"`+strings.TrimPrefix(servers[l.ID()].URL, "http://")+`"`, "the caller is told where the leader is")
	}
}

// A watch that fails on the node's side (here, the node crashes) ends its
// stream with an error event, so the client knows to go elsewhere.
func TestHandler_WatchEndsWithAnErrorEvent(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	servers, _ := serveCluster(t, ctx, c)
	f := follower(t, ctx, c)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, servers[f.ID()].URL+"/v1/services/api/watch", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	first := make([]byte, len("event: instances\n"))
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err)
	assert.Equal(t, "event: instances\n", string(first))
	require.NoError(t, c.Crash(f.ID()))
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(rest), "event: error\ndata: {")
	assert.Contains(t, string(rest), `"title":"watch failed"`)
}
