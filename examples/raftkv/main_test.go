package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
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

// retry repeats a request while the cluster answers 503 (no leader yet, or
// its address not yet known), for up to 10 s.
func retry(t *testing.T, client *http.Client, method, url, body string) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := httpDo(t, client, method, url, body)
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
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
	dir := t.TempDir()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	var servers []*server
	defer func() {
		for _, s := range servers {
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	for i := 1; i <= 3; i++ {
		c := config{id: fmt.Sprintf("n%d", i), raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: filepath.Join(dir, fmt.Sprint(i)), timing: "lan"}
		if i == 1 {
			c.bootstrap = true
		} else {
			c.join = servers[0].httpAddr
		}
		s, err := start(ctx, c)
		require.NoError(t, err)
		servers = append(servers, s)
		if i == 1 {
			for !s.node.IsLeader() {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	// A node that has just joined may not know the leader's API yet: 503,
	// retry, as a client would.
	code, body := retry(t, client, "PUT", "http://"+servers[2].httpAddr+"/v1/kv/greeting", `{"value":"hello"}`)
	require.Equal(t, http.StatusOK, code, body)

	// Kill the leader (without a graceful handover).
	li := -1
	for i, s := range servers {
		if s.node.IsLeader() {
			li = i
		}
	}
	require.GreaterOrEqual(t, li, 0)
	require.NoError(t, servers[li].node.Close(context.Background()))
	servers[li].cancel()
	<-servers[li].leader
	_ = servers[li].http.Close()
	<-servers[li].done
	servers[li].client.CloseIdleConnections()
	servers[li] = nil

	survivor := servers[(li+1)%3]
	code, body = retry(t, client, "GET", "http://"+survivor.httpAddr+"/v1/kv/greeting", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "hello", body["value"])
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-id", "n1"},
		{"-id", "n1", "-data", "/tmp/x", "-bootstrap", "-join", "127.0.0.1:1"},
		{"-id", "n1", "-data", "/tmp/x", "-timing", "fast"},
	} {
		_, err := parse(args)
		assert.Error(t, err, "%v", args)
	}
	c, err := parse([]string{"-id", "n1", "-data", "/tmp/x"})
	require.NoError(t, err)
	assert.Equal(t, "lan", c.timing)
}
