package registry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/consensus/registry"
)

// scriptedNode is an HTTP server that answers each request with the next
// of its replies (the last one repeats) and records what it was asked.
type scriptedNode struct {
	srv     *httptest.Server
	mu      sync.Mutex
	replies []scriptedReply
	log     *requestLog
}

type scriptedReply struct {
	status int
	body   any
}

// requestLog records requests across nodes, in arrival order.
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	node, method, path, auth string
	at                       time.Time
}

func (l *requestLog) all() []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedRequest(nil), l.reqs...)
}

func newScriptedNode(t *testing.T, name string, log *requestLog, replies ...scriptedReply) *scriptedNode {
	return startScriptedNode(t, name, log, false, replies...)
}

// startScriptedNode starts a scripted node, serving HTTPS if tls.
func startScriptedNode(t *testing.T, name string, log *requestLog, tls bool, replies ...scriptedReply) *scriptedNode {
	t.Helper()
	n := &scriptedNode{replies: replies, log: log}
	n.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.mu.Lock()
		log.reqs = append(log.reqs, loggedRequest{node: name, method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), at: time.Now()})
		log.mu.Unlock()
		n.mu.Lock()
		reply := n.replies[0]
		if len(n.replies) > 1 {
			n.replies = n.replies[1:]
		}
		n.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(reply.status)
		assert.NoError(t, json.NewEncoder(w).Encode(reply.body))
	}))
	if tls {
		n.srv.StartTLS()
	} else {
		n.srv.Start()
	}
	t.Cleanup(n.srv.Close)
	return n
}

func noLeader(leaderAPI string) scriptedReply {
	return scriptedReply{http.StatusServiceUnavailable, map[string]any{"status": 503, "detail": "no leader", "leader_api": leaderAPI}}
}

var apiList = scriptedReply{http.StatusOK, map[string]any{"instances": []registry.Instance{{Service: "api", ID: "a", Addr: "10.0.0.1:80"}}, "revision": 7}}

// With no leader anywhere, the client tries every node, then waits
// RetryWait (100 ms by default) before the next round; the node that
// answers becomes the one it asks first.
func TestClient_WaitsRetryWaitAfterEveryNodeWasTried(t *testing.T) {
	log := &requestLog{}
	a := newScriptedNode(t, "a", log, noLeader(""), apiList)
	b := newScriptedNode(t, "b", log, noLeader(""))
	cl, err := registry.NewClient([]string{a.srv.URL, b.srv.URL}, registry.ClientOptions{Token: "tok"})
	require.NoError(t, err)
	insts, rev, err := cl.List(t.Context(), "api")
	require.NoError(t, err)
	assert.Equal(t, uint64(7), rev)
	require.Len(t, insts, 1)
	assert.Equal(t, "10.0.0.1:80", insts[0].Addr)
	_, _, err = cl.List(t.Context(), "api")
	require.NoError(t, err)

	reqs := log.all()
	var order []string
	for _, r := range reqs {
		order = append(order, r.node)
		assert.Equal(t, "Bearer tok", r.auth)
		assert.Equal(t, "/v1/services/api", r.path)
	}
	assert.Equal(t, []string{"a", "b", "a", "a"}, order, "a round of both nodes, a wait, then a, remembered")
	assert.GreaterOrEqual(t, reqs[2].at.Sub(reqs[1].at), 100*time.Millisecond)

	// A RetryWait of its own, and a 504 (the leader lost mid-commit) is
	// retried like a 503.
	log2 := &requestLog{}
	c := newScriptedNode(t, "c", log2, scriptedReply{http.StatusGatewayTimeout, map[string]any{"detail": "lost"}}, apiList)
	cl, err = registry.NewClient([]string{c.srv.URL}, registry.ClientOptions{RetryWait: 250 * time.Millisecond})
	require.NoError(t, err)
	_, _, err = cl.List(t.Context(), "api")
	require.NoError(t, err)
	reqs = log2.all()
	require.Len(t, reqs, 2)
	assert.Empty(t, reqs[0].auth, "no token, no Authorization header")
	assert.GreaterOrEqual(t, reqs[1].at.Sub(reqs[0].at), 250*time.Millisecond)
}

// A node that knows the leader names its API address: the client follows
// it at once, with the endpoints' scheme, and returns the registration as
// the leader answered it.
func TestClient_FollowsTheNamedLeader(t *testing.T) {
	log := &requestLog{}
	leader := newScriptedNode(t, "leader", log, scriptedReply{http.StatusOK, map[string]any{
		"instance": registry.Instance{Service: "api", ID: "a", Addr: "10.0.0.1:80"}, "lease": 42, "ttl_ms": 1500, "revision": 9}})
	follower := newScriptedNode(t, "follower", log, noLeader(strings.TrimPrefix(leader.srv.URL, "http://")))
	cl, err := registry.NewClient([]string{follower.srv.URL}, registry.ClientOptions{})
	require.NoError(t, err)
	reg, err := cl.Register(t.Context(), registry.Instance{Service: "api", ID: "a", Addr: "10.0.0.1:80"}, 1500*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, reg.TTL)
	assert.Equal(t, uint64(9), reg.Revision)
	assert.EqualValues(t, 42, reg.Lease)
	var order []string
	for _, r := range log.all() {
		order = append(order, r.node+" "+r.method+" "+r.path)
	}
	assert.Equal(t, []string{"follower PUT /v1/services/api/instances/a", "leader PUT /v1/services/api/instances/a"}, order)
}

// The client waits only once every node was tried: three nodes without a
// leader are each asked once before the wait, which here outlasts the
// caller's deadline; the error says the deadline ended it.
func TestClient_TriesEveryNodeBeforeWaiting(t *testing.T) {
	log := &requestLog{}
	var urls []string
	for _, name := range []string{"a", "b", "c"} {
		urls = append(urls, newScriptedNode(t, name, log, noLeader("")).srv.URL)
	}
	cl, err := registry.NewClient(urls, registry.ClientOptions{RetryWait: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, _, err = cl.List(ctx, "api")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var order []string
	for _, r := range log.all() {
		order = append(order, r.node)
	}
	assert.Equal(t, []string{"a", "b", "c"}, order)

	// A status that is neither a success nor a retry is the caller's error.
	odd := newScriptedNode(t, "odd", log, scriptedReply{http.StatusMultipleChoices, map[string]any{"detail": "choose"}})
	cl, err = registry.NewClient([]string{odd.srv.URL}, registry.ClientOptions{})
	require.NoError(t, err)
	_, _, err = cl.List(t.Context(), "api")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status 300: choose")
}

// Over HTTPS the client follows a named leader with https too, through
// the HTTP client it was given (here, one that trusts the test servers).
func TestClient_FollowsTheLeaderOverHTTPS(t *testing.T) {
	log := &requestLog{}
	leader := startScriptedNode(t, "leader", log, true, apiList)
	follower := startScriptedNode(t, "follower", log, true, noLeader(strings.TrimPrefix(leader.srv.URL, "https://")))
	cl, err := registry.NewClient([]string{follower.srv.URL}, registry.ClientOptions{HTTP: leader.srv.Client()})
	require.NoError(t, err)
	insts, rev, err := cl.List(t.Context(), "api")
	require.NoError(t, err)
	assert.Len(t, insts, 1)
	assert.Equal(t, uint64(7), rev)
	var order []string
	for _, r := range log.all() {
		order = append(order, r.node)
	}
	assert.Equal(t, []string{"follower", "leader"}, order)
}
