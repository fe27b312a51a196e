package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lockdown"
	"github.com/sysdesign-go/sysdesign/examples/internal/raftserve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func httpDo(t *testing.T, client *http.Client, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// waitFor polls cond until it holds, failing the test when ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// retry repeats a request while the cluster answers 503 (no leader yet, or
// its address not yet known) or 504 (leadership lost mid-commit), for up
// to 10 s.
func retry(t *testing.T, client *http.Client, method, url, body string) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := httpDo(t, client, method, url, body)
		// 503: no leader known yet; 504: a leader lost its place while
		// committing (the outcome is unknown, and the tests' writes can be
		// repeated: they set a value).
		if code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout || time.Now().After(deadline) {
			return code, out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The README walk-through: three processes' worth of nodes, a write through
// a follower, the leader killed, the value read back from the survivors.
func TestThreeNodeClusterSurvivesLeaderLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	servers := startCluster(t, ctx, t.TempDir(), func(*config) {})
	// A node that has just joined may not know the leader's API yet: 503,
	// retry, as a client would.
	code, body := retry(t, client, "PUT", "http://"+servers[2].HTTPAddr()+"/v1/kv/greeting", `{"value":"hello"}`)
	require.Equal(t, http.StatusOK, code, body)

	// Kill the leader (without a graceful handover).
	li := -1
	for i, s := range servers {
		if s.Node.IsLeader() {
			li = i
		}
	}
	require.GreaterOrEqual(t, li, 0)
	require.NoError(t, servers[li].Kill())
	servers[li] = nil

	survivor := servers[(li+1)%3]
	code, body = retry(t, client, "GET", "http://"+survivor.HTTPAddr()+"/v1/kv/greeting", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "hello", body["value"])
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-id", "n1"},
		{"-id", "n1", "-data", "/tmp/x", "-bootstrap", "-join", "127.0.0.1:1"},
		{"-id", "n1", "-data", "/tmp/x", "-timing", "fast"},
		{"-id", "n1", "-data", "/tmp/x", "-users", "/tmp/users.json"},
	} {
		_, err := parse(args)
		assert.Error(t, err, "%v", args)
	}
	c, err := parse([]string{"-id", "n1", "-data", "/tmp/x"})
	require.NoError(t, err)
	assert.Equal(t, "lan", c.timing)
}

// startCluster starts three nodes in dir, n1 bootstrapping and the others
// joining through it, each configured by with, and closes them at the end
// of the test (but those the test set to nil).
func startCluster(t *testing.T, ctx context.Context, dir string, with func(*config)) []*raftserve.Server {
	t.Helper()
	servers := make([]*raftserve.Server, 0, 3)
	t.Cleanup(func() {
		for _, s := range servers {
			if s != nil {
				_ = s.Close()
			}
		}
	})
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		c := config{id: id, raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: filepath.Join(dir, id), timing: "lan"}
		if i == 1 {
			c.bootstrap = true
		} else {
			c.join = servers[0].HTTPAddr()
		}
		with(&c)
		s, err := start(ctx, c)
		require.NoError(t, err)
		servers = append(servers, s)
		if i == 1 {
			waitFor(t, ctx, "n1 leads", s.Node.IsLeader)
		}
	}
	return servers
}

// startLockedDown starts three nodes with mutual TLS between them, HTTPS
// and the role table users.
func startLockedDown(t *testing.T, ctx context.Context, dir, users string) []*raftserve.Server {
	t.Helper()
	require.NoError(t, lockdown.WriteCerts(filepath.Join(dir, "tls"), []string{"n1", "n2", "n3", "root"}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users.json"), []byte(users), 0o600))
	return startCluster(t, ctx, dir, func(c *config) {
		c.tlsCert, c.tlsKey, c.tlsCA = filepath.Join(dir, "tls", c.id+".crt"), filepath.Join(dir, "tls", c.id+".key"), filepath.Join(dir, "tls", "ca.crt")
		c.users = filepath.Join(dir, "users.json")
	})
}

// The README's locked-down start-up: nodes join over HTTPS with their
// certificates; a writer's token writes through a follower, a reader's is
// refused a write, a caller without credentials is refused, the admin's
// certificate takes a backup, and plain HTTP gets nowhere.
func TestLockedDownCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	servers := startLockedDown(t, ctx, dir, `[{"name":"n1","role":"admin"},{"name":"n2","role":"admin"},{"name":"n3","role":"admin"},{"name":"root","role":"admin"},
		{"name":"app","token":"app-token-0123456789abcdef","role":"read-write","prefix":"app/"},{"name":"viewer","token":"viewer-token-0123456789abc","role":"read-only"}]`)

	pem, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	with := func(token string) *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+token)
			return tr.RoundTrip(r)
		})}
	}
	follower := "https://" + servers[2].HTTPAddr()
	code, body := retry(t, with("app-token-0123456789abcdef"), "PUT", follower+"/v1/kv/app/greeting", `{"value":"hello"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = retry(t, with("viewer-token-0123456789abc"), "PUT", follower+"/v1/kv/app/greeting", `{"value":"no"}`)
	assert.Equal(t, http.StatusForbidden, code, body)
	code, body = retry(t, with("viewer-token-0123456789abc"), "GET", follower+"/v1/kv/app/greeting", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "hello", body["value"])
	code, _ = retry(t, client, "GET", follower+"/v1/kv/app/greeting", "")
	assert.Equal(t, http.StatusUnauthorized, code)

	root, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "root.crt"), filepath.Join(dir, "tls", "root.key"))
	require.NoError(t, err)
	adminTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{root}, MinVersion: tls.VersionTLS13}}
	defer adminTr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: adminTr, Timeout: 20 * time.Second}).Get(follower + "/v1/backup")
	require.NoError(t, err)
	backup, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(backup))
	assert.Contains(t, string(backup), `"format":"sysdesign-consensus-backup"`)

	plain := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	resp, err = plain.Get("http://" + servers[0].HTTPAddr() + "/v1/kv/app/greeting")
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to an HTTPS port")
	}
	plain.CloseIdleConnections()
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A half-configured TLS setup stops the node before it starts, naming
// what is missing.
func TestHalfConfiguredTLSRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, lockdown.WriteCerts(dir, []string{"n1"}))
	base := config{id: "n1", raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: filepath.Join(dir, "data"), timing: "lan"}
	for name, tc := range map[string]struct {
		cert, key, ca, want string
	}{
		"certificate without key": {filepath.Join(dir, "n1.crt"), "", filepath.Join(dir, "ca.crt"), "[key]"},
		"no CA":                   {filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), "", "[CA]"},
		"CA only":                 {"", "", filepath.Join(dir, "ca.crt"), "[certificate key]"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			c.tlsCert, c.tlsKey, c.tlsCA = tc.cert, tc.key, tc.ca
			_, err := start(context.Background(), c)
			require.ErrorIs(t, err, consensus.ErrInvalidConfig)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
