package replica

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/shard"
)

// httpCluster is k nodes, each behind its own loopback HTTP server,
// reaching each other and the coordinator over HTTP.
type httpCluster struct {
	ring      *shard.Ring
	transport *HTTPTransport
	servers   map[string]*httptest.Server
	nodes     map[string]*Node
}

func newHTTPCluster(t testing.TB, k int) *httpCluster {
	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
	}
	ring, err := shard.NewRing(shard.NodesNamed(names...), shard.RingOptions{})
	require.NoError(t, err)
	hc := &httpCluster{ring: ring, transport: &HTTPTransport{Nodes: map[string]string{}},
		servers: map[string]*httptest.Server{}, nodes: map[string]*Node{}}
	for _, name := range names {
		node, err := NewNode(NodeConfig{Name: name, Placement: ring, Transport: hc.transport})
		require.NoError(t, err)
		srv := httptest.NewServer(NewHTTPHandler(node))
		t.Cleanup(srv.Close)
		hc.nodes[name], hc.servers[name], hc.transport.Nodes[name] = node, srv, srv.URL
	}
	return hc
}

func (hc *httpCluster) prefs(key string) []string {
	var out []string
	for _, i := range hc.ring.AppendN(nil, key, 3) {
		out = append(out, hc.ring.Nodes()[i].Name)
	}
	return out
}

func TestHTTP_ClusterOnLoopback(t *testing.T) {
	hc := newHTTPCluster(t, 4)
	c, err := NewCoordinator(Config{Placement: hc.ring, Transport: hc.transport, Timeout: 2 * time.Second, SloppyQuorum: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close(context.Background())) }()
	ctx := context.Background()

	_, err = c.Put(ctx, "k", []byte("v1"), Context{}, Options{Level: All})
	require.NoError(t, err)
	got, err := c.Get(ctx, "k", Options{Level: All})
	require.NoError(t, err)
	assert.Equal(t, []string{"v1"}, strs(got.Values))

	// Siblings and their resolution travel over the wire.
	_, err = c.Put(ctx, "k", []byte("v2"), Context{}, Options{})
	require.NoError(t, err)
	got, err = c.Get(ctx, "k", Options{Level: All})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"v1", "v2"}, strs(got.Values))
	_, err = c.Put(ctx, "k", []byte("v3"), got.Context, Options{Level: All})
	require.NoError(t, err)

	// A replica's server stops: a connection refused is a node down; the
	// sloppy quorum hands its copy to the fourth node, which hands it back
	// to a new server for the same node.
	p := hc.prefs("k")
	hc.servers[p[2]].Close()
	_, err = c.Put(ctx, "k", []byte("v4"), Context{}, Options{Level: All})
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx)) // replication in flight ends
	var fallback string
	for name := range hc.nodes {
		if !contains(p, name) {
			fallback = name
		}
	}
	_, err = hc.nodes[fallback].HandOff(ctx)
	require.ErrorIs(t, err, ErrNodeDown)
	srv := httptest.NewServer(NewHTTPHandler(hc.nodes[p[2]]))
	defer srv.Close()
	hc.transport.Nodes[p[2]] = srv.URL
	n, err := hc.nodes[fallback].HandOff(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	resp, err := hc.transport.Call(ctx, p[2], &Request{Op: OpGet, Key: "k"})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"v3", "v4"}, strs(resp.Record.values()))

	// Anti-entropy over HTTP finds nothing left to repair.
	st, err := hc.nodes[p[0]].AntiEntropy(ctx, p[2])
	require.NoError(t, err)
	assert.Zero(t, st.Keys)
}

func TestHTTP_GarbageOnTheWireMeansFailedNode(t *testing.T) {
	for name, reply := range map[string]func(http.ResponseWriter){
		"not json":      func(w http.ResponseWriter) { fmt.Fprint(w, "<html>") },
		"unknown field": func(w http.ResponseWriter) { fmt.Fprint(w, `{"key":"k","evil":1}`) },
		"truncated":     func(w http.ResponseWriter) { fmt.Fprint(w, `{"key":"k","record":{"siblings":[`) },
		"wrong key": func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"key":"x","found":true,"record":{"siblings":[],"clock":{}}}`)
		},
		"bad dot": func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"key":"k","record":{"siblings":[{"value":"","dot":{"node":"","counter":0}}]}}`)
		},
		"huge": func(w http.ResponseWriter) { fmt.Fprint(w, `{"key":"k","pad":"`+strings.Repeat("x", 5000)+`"}`) },
		"500":  func(w http.ResponseWriter) { http.Error(w, "boom", 500) },
	} {
		t.Run(name, func(t *testing.T) {
			hc := newHTTPCluster(t, 3)
			hc.transport.MaxReplyBytes = 4096
			p := hc.prefs("k")
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reply(w) }))
			defer bad.Close()
			hc.transport.Nodes[p[1]] = bad.URL
			c, err := NewCoordinator(Config{Placement: hc.ring, Transport: hc.transport})
			require.NoError(t, err)
			defer func() { require.NoError(t, c.Close(context.Background())) }()
			ctx := context.Background()
			_, err = c.Put(ctx, "k", []byte("v"), Context{}, Options{Level: All})
			require.ErrorIs(t, err, ErrUnavailable)
			_, err = c.Get(ctx, "k", Options{Level: All})
			require.ErrorIs(t, err, ErrUnavailable)
			if name != "500" {
				assert.ErrorIs(t, err, ErrBadReply)
			}
			got, err := c.Get(ctx, "k", Options{Level: Quorum})
			require.NoError(t, err)
			assert.Equal(t, []string{"v"}, strs(got.Values))
		})
	}
}

func TestHTTP_HandlerRejectsBadRequests(t *testing.T) {
	hc := newHTTPCluster(t, 3)
	srv := hc.servers["n1"]
	for _, body := range []string{"{", `{"op":2}`, `{"op":99,"key":"k"}`} {
		resp, err := http.Post(srv.URL+HTTPPath, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	}
	_, err := hc.transport.Call(context.Background(), "n1", &Request{Op: OpCoordinate})
	assert.ErrorIs(t, err, ErrInvalidArgument, "a 400 is bad input, named as such")
	_, err = hc.transport.Call(context.Background(), "n9", &Request{Op: OpGet, Key: "k"})
	assert.ErrorIs(t, err, ErrNodeDown)
}

func TestHTTPTransport_ReplyOfMaxReplyBytes(t *testing.T) {
	const limit = 512
	for _, size := range []int{limit, limit + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			// A reply of size bytes, the padding inside the object so
			// that a cut one does not decode.
			body := `{"key":"k"` + strings.Repeat(" ", size-len(`{"key":"k"}`)) + `}`
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) }))
			defer srv.Close()
			tr := &HTTPTransport{Nodes: map[string]string{"n1": srv.URL}, MaxReplyBytes: limit}
			resp, err := tr.Call(context.Background(), "n1", &Request{Op: OpGet, Key: "k"})
			if size > limit {
				require.ErrorIs(t, err, ErrBadReply)
				assert.ErrorContains(t, err, "more than 512 bytes")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "k", resp.Key)
		})
	}
}
