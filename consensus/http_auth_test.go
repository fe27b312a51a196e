package consensus

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	adminToken   = "admin-token-0123456789abcdef"
	writerToken  = "writer-token-0123456789abcdef"
	readerToken  = "reader-token-0123456789abcdef"
	expiredToken = "expired-token-0123456789abcdef"
)

// testAuth is the role table of the tests: an admin, a writer on "app/",
// a reader, an expired writer, and the certificate users "node" (the
// nodes' own certificates), "alice" (writer on "app/") and "bob" (reader).
func testAuth(t testing.TB) *Auth {
	t.Helper()
	a, err := NewAuth(
		User{Name: "root", Token: adminToken, Role: RoleAdmin},
		User{Name: "writer", Token: writerToken, Role: RoleReadWrite, Prefix: "app/"},
		User{Name: "reader", Token: readerToken, Role: RoleReadOnly},
		User{Name: "late", Token: expiredToken, Role: RoleReadWrite, Expires: time.Now().Add(-time.Minute)},
		User{Name: "node", Role: RoleAdmin},
		User{Name: "alice", Role: RoleReadWrite, Prefix: "app/"},
		User{Name: "bob", Role: RoleReadOnly},
	)
	require.NoError(t, err)
	return a
}

// send sends one request with the given Authorization header (none if
// empty) and returns its status, headers and body. It tries again while
// the answer is 503: on a busy machine an election may be under way.
func send(t *testing.T, client *http.Client, method, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	ctx := testCtx(t)
	for {
		code, hdr, raw := sendOnce(t, client, method, url, auth, body)
		if code != http.StatusServiceUnavailable || ctx.Err() != nil {
			return code, hdr, raw
		}
		time.Sleep(20 * time.Millisecond) // a new leader, not an event to wait for
	}
}

func sendOnce(t *testing.T, client *http.Client, method, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 {
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), string(raw))
	}
	return resp.StatusCode, resp.Header, string(raw)
}

// Guide: Security Considerations (authentication, role-based
// authorization). Bearer tokens against every role, on the leader and
// through a follower that forwards with the caller's token.
func TestHandler_AuthByToken(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{Auth: testAuth(t)})
	leader, err := a.c.WaitLeader(testCtx(t))
	require.NoError(t, err)
	f := followerOf(t, a.c).ID()
	for _, node := range []string{leader.ID(), f} {
		url := a.servers[node].URL
		cases := []struct {
			name, method, path, auth, body string
			want                           int
		}{
			{"no credentials", "GET", "/v1/kv/app/x", "", "", http.StatusUnauthorized},
			{"basic scheme", "GET", "/v1/kv/app/x", "Basic cm9vdDpyb290", "", http.StatusUnauthorized},
			{"bearer without token", "GET", "/v1/kv/app/x", "Bearer", "", http.StatusUnauthorized},
			{"wrong token", "PUT", "/v1/kv/app/x", "Bearer " + writerToken + "x", `{"value":"v"}`, http.StatusUnauthorized},
			{"expired token", "PUT", "/v1/kv/app/x", "Bearer " + expiredToken, `{"value":"v"}`, http.StatusUnauthorized},
			{"writer in its prefix", "PUT", "/v1/kv/app/x", "Bearer " + writerToken, `{"value":"v"}`, http.StatusOK},
			{"writer outside its prefix", "PUT", "/v1/kv/other/x", "Bearer " + writerToken, `{"value":"v"}`, http.StatusForbidden},
			{"writer lists outside its prefix", "GET", "/v1/kv?prefix=", "Bearer " + writerToken, "", http.StatusForbidden},
			{"writer takes a lock outside its prefix", "POST", "/v1/lock/l", "Bearer " + writerToken, `{"owner":"w","ttl_ms":60000}`, http.StatusForbidden},
			{"admin takes a lock", "POST", "/v1/lock/l", "Bearer " + adminToken, `{"owner":"r","ttl_ms":60000}`, http.StatusOK},
			{"writer joins a node", "POST", "/v1/cluster/join", "Bearer " + writerToken, `{"id":"x","raft_addr":"x"}`, http.StatusForbidden},
			{"reader reads", "GET", "/v1/kv/app/x", "Bearer " + readerToken, "", http.StatusOK},
			{"reader writes", "PUT", "/v1/kv/app/x", "Bearer " + readerToken, `{"value":"w"}`, http.StatusForbidden},
			{"reader deletes", "DELETE", "/v1/kv/app/x", "Bearer " + readerToken, "", http.StatusForbidden},
			{"reader grants a lease", "POST", "/v1/lease", "Bearer " + readerToken, `{"ttl_ms":60000}`, http.StatusForbidden},
			{"reader removes a node", "POST", "/v1/cluster/remove", "Bearer " + readerToken, `{"id":"n9"}`, http.StatusForbidden},
			{"reader's status", "GET", "/v1/cluster/status", "Bearer " + readerToken, "", http.StatusOK},
			{"admin writes anywhere", "PUT", "/v1/kv/other/x", "Bearer " + adminToken, `{"value":"v"}`, http.StatusOK},
			{"admin removes an unknown node", "POST", "/v1/cluster/remove", "Bearer " + adminToken, `{"id":"n9"}`, http.StatusNotFound},
		}
		for _, tc := range cases {
			t.Run(node+"/"+tc.name, func(t *testing.T) {
				code, hdr, body := send(t, a.client, tc.method, url+tc.path, tc.auth, tc.body)
				require.Equal(t, tc.want, code, body)
				if code == http.StatusUnauthorized {
					assert.Equal(t, wwwAuthenticate, hdr.Get("WWW-Authenticate"))
				}
				if node == f && code == http.StatusOK && tc.method != "GET" && !a.c.Node(f).IsLeader() {
					assert.NotEmpty(t, hdr.Get(forwardedHeader), "a follower forwards a write")
				}
				if _, tok, ok := strings.Cut(tc.auth, " "); ok && len(tok) > 4 {
					assert.NotContains(t, body, tok, "a token never appears in an answer")
				}
			})
		}
	}
}

// tlsAPICluster is an apiCluster whose API speaks HTTPS, its servers
// asking for client certificates from ca and forwarding with the nodes'
// certificate (user "node").
func newTLSAPICluster(t *testing.T, ca *testCA) *apiCluster {
	t.Helper()
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	nodeTLS := ca.mutual(t, "node")
	tr := &http.Transport{TLSClientConfig: nodeTLS}
	a := &apiCluster{c: c, servers: map[string]*httptest.Server{}, client: &http.Client{Transport: tr}}
	for _, n := range c.Nodes() {
		h, err := NewHandler(n, HandlerOptions{Client: a.client, Auth: testAuth(t)})
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(h)
		srv.TLS = nodeTLS.Clone()
		srv.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		srv.StartTLS()
		a.servers[n.ID()] = srv
		t.Cleanup(srv.Close)
	}
	t.Cleanup(tr.CloseIdleConnections)
	a.publish(t, ctx)
	return a
}

// clientWith returns an HTTPS client presenting a certificate for cn from
// ca (none if ca is nil), trusting the cluster's CA.
func clientWith(t *testing.T, cluster, ca *testCA, cn string) *http.Client {
	t.Helper()
	conf := &tls.Config{RootCAs: cluster.pool, MinVersion: tls.VersionTLS13}
	if ca != nil {
		// Always present it, even when the server asks for another CA's.
		cert := ca.issue(t, cn)
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: conf}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Client certificates over HTTPS: a follower forwards a certificate
// user's request under its own certificate and the caller's name, and the
// leader authorizes the caller, not the follower.
func TestHandler_AuthByClientCertificate(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	a := newTLSAPICluster(t, ca)
	f := followerOf(t, a.c).ID()
	alice, bob := clientWith(t, ca, ca, "alice"), clientWith(t, ca, ca, "bob")

	code, hdr, body := send(t, alice, "PUT", a.servers[f].URL+"/v1/kv/app/cert", "", `{"value":"alice"}`)
	require.Equal(t, http.StatusOK, code, body)
	if !a.c.Node(f).IsLeader() { // a busy machine may have moved the leadership
		assert.NotEmpty(t, hdr.Get(forwardedHeader), "the follower forwarded alice's write")
	}
	code, _, body = send(t, alice, "PUT", a.servers[f].URL+"/v1/kv/other/cert", "", `{"value":"alice"}`)
	assert.Equal(t, http.StatusForbidden, code, body)
	code, _, body = send(t, bob, "PUT", a.servers[f].URL+"/v1/kv/app/cert", "", `{"value":"bob"}`)
	assert.Equal(t, http.StatusForbidden, code, body, "a reader through a follower")
	code, _, body = send(t, bob, "GET", a.servers[f].URL+"/v1/kv/app/cert", "", "")
	require.Equal(t, http.StatusOK, code, body, "a reader's linearizable read, forwarded")
	assert.Contains(t, body, `"value":"alice"`)

	// The leader acts as the forwarded user, and only for an admin.
	node := clientWith(t, ca, ca, "node")
	req := func(c *http.Client, as string) int {
		ctx := testCtx(t)
		for {
			// To the leader, without forwarding (a follower answers 503),
			// again after an election on a busy machine.
			l, err := a.c.WaitLeader(ctx)
			require.NoError(t, err)
			r, err := http.NewRequest("PUT", a.servers[l.ID()].URL+"/v1/kv/app/fwd", strings.NewReader(`{"value":"x"}`))
			require.NoError(t, err)
			r.Header.Set(ForwardedUserHeader, as)
			r.Header.Set(forwardedHeader, "test")
			resp, err := c.Do(r)
			require.NoError(t, err)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || ctx.Err() != nil {
				return resp.StatusCode
			}
		}
	}
	assert.Equal(t, http.StatusForbidden, req(node, "bob"), "a node forwarding for a reader")
	assert.Equal(t, http.StatusOK, req(node, "alice"), "a node forwarding for a writer")
	assert.Equal(t, http.StatusForbidden, req(bob, "node"), "a reader claiming to forward for an admin")
	assert.Equal(t, http.StatusUnauthorized, req(node, "mallory"), "a forwarded user of no name")

	code, hdr, _ = send(t, clientWith(t, ca, nil, ""), "GET", a.servers[f].URL+"/v1/kv/app/cert", "", "")
	assert.Equal(t, http.StatusUnauthorized, code, "no certificate and no token")
	assert.Equal(t, wwwAuthenticate, hdr.Get("WWW-Authenticate"))
	code, _, body = send(t, clientWith(t, ca, nil, ""), "PUT", a.servers[f].URL+"/v1/kv/app/tok", "Bearer "+writerToken, `{"value":"t"}`)
	assert.Equal(t, http.StatusOK, code, body, "a token over HTTPS, forwarded")
	code, _, _ = send(t, clientWith(t, ca, ca, "carol"), "GET", a.servers[f].URL+"/v1/kv/app/cert", "", "")
	assert.Equal(t, http.StatusUnauthorized, code, "a certificate of no user")

	other := newTestCA(t, "other CA")
	_, err := clientWith(t, ca, other, "alice").Get(a.servers[f].URL + "/v1/kv/app/cert")
	assert.Error(t, err, "a certificate from another CA fails the handshake")
}

func TestNewAuth_BadTables(t *testing.T) {
	for name, tc := range map[string]struct {
		users []User
		want  string
	}{
		"empty name":   {[]User{{Token: adminToken, Role: RoleAdmin}}, "empty name"},
		"twice":        {[]User{{Name: "a", Role: RoleAdmin}, {Name: "a", Role: RoleReadOnly}}, `"a" listed twice`},
		"no role":      {[]User{{Name: "a", Token: adminToken}}, "unknown role"},
		"short token":  {[]User{{Name: "a", Token: "secret", Role: RoleAdmin}}, "6 bytes"},
		"shared token": {[]User{{Name: "a", Token: adminToken, Role: RoleAdmin}, {Name: "b", Token: adminToken, Role: RoleReadOnly}}, `"a" and "b" share a token`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewAuth(tc.users...)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.ErrorContains(t, err, tc.want)
			for _, u := range tc.users {
				if u.Token != "" {
					assert.NotContains(t, err.Error(), u.Token, "an error never holds a token")
				}
			}
		})
	}
}

func TestUser_ReadsFromJSON(t *testing.T) {
	var users []User
	require.NoError(t, json.Unmarshal([]byte(`[{"name":"n1","role":"admin"},{"name":"app","token":"`+writerToken+`","role":"read-write","prefix":"app/"},{"name":"v","role":"read-only","expires":"2030-01-01T00:00:00Z"}]`), &users))
	assert.Equal(t, []User{
		{Name: "n1", Role: RoleAdmin},
		{Name: "app", Token: writerToken, Role: RoleReadWrite, Prefix: "app/"},
		{Name: "v", Role: RoleReadOnly, Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
	}, users)
	err := json.Unmarshal([]byte(`[{"name":"x","role":"root"}]`), &users)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, `"root"`)
	b, err := json.Marshal(User{Name: "a", Role: RoleReadWrite})
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"a","role":"read-write"}`, string(b))
}

// A request that reaches the handler with a TLS state of no certificate
// (a hand-built request, or a server in front that fills it in) is
// unauthenticated, not a panic.
func TestAuth_EmptyVerifiedChain(t *testing.T) {
	a := testAuth(t)
	r := httptest.NewRequest(http.MethodGet, "/v1/kv/app/x", nil)
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{}}}
	_, err := a.caller(r)
	require.ErrorIs(t, err, ErrUnauthenticated)
	assert.ErrorContains(t, err, "no bearer token or client certificate")
}

// Revoking a lease deletes its keys, so it needs write access to each.
func TestHandler_LeaseRevokeNeedsWriteAccessToItsKeys(t *testing.T) {
	a := newAPICluster(t, HandlerOptions{Auth: testAuth(t)})
	leader, err := a.c.WaitLeader(testCtx(t))
	require.NoError(t, err)
	url := a.servers[leader.ID()].URL
	grant := func(token, key string) string {
		t.Helper()
		code, _, body := send(t, a.client, "POST", url+"/v1/lease", "Bearer "+token, `{"ttl_ms":60000}`)
		require.Equal(t, http.StatusOK, code, body)
		var g struct{ ID uint64 }
		require.NoError(t, json.Unmarshal([]byte(body), &g))
		id := strconv.FormatUint(g.ID, 10)
		code, _, body = send(t, a.client, "PUT", url+"/v1/kv/"+key, "Bearer "+adminToken, `{"value":"v","lease":`+id+`}`)
		require.Equal(t, http.StatusOK, code, body)
		return id
	}
	own := grant(writerToken, "app/x")
	other := grant(adminToken, "other/x")
	for _, tc := range []struct {
		name, id string
		want     int
	}{
		{"outside the writer's prefix", other, http.StatusForbidden},
		{"inside it", own, http.StatusOK},
		{"not a number", "x", http.StatusBadRequest},
	} {
		code, _, body := send(t, a.client, "DELETE", url+"/v1/lease/"+tc.id, "Bearer "+writerToken, "")
		assert.Equal(t, tc.want, code, "%s: %s", tc.name, body)
	}
	_, err = leader.Get(testCtx(t), "app/x")
	require.ErrorIs(t, err, ErrKeyNotFound, "the revoked lease's key is gone")
	_, err = leader.Get(testCtx(t), "other/x")
	require.NoError(t, err)
}
