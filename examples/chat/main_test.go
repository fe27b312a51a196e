package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The program starts two gateways behind the balancer, prints a page URL
// per demo user, serves the page and the WebSocket through the balancer,
// and stops cleanly when its context ends.
func TestRunCluster(t *testing.T) {
	db := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type started struct {
		c     *service.Cluster
		pages map[string]string
	}
	ready := make(chan started, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-cluster", "2", "-redis", db.Addr, "-prefix", db.Prefix,
			"-media", t.TempDir(), "-demo-users", "alice,bob"}, io.Discard,
			func(c *service.Cluster, pages map[string]string) { ready <- started{c, pages} })
	}()
	var s started
	select {
	case s = <-ready:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready in 20 s")
	}
	require.Len(t, s.c.GatewayURLs, 2)
	page, ok := s.pages["alice"]
	require.True(t, ok)
	base, token, _ := strings.Cut(page, "/#token=")
	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `<script src="app.js">`)

	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	conn, err := client.Dial(dctx, base, token)
	require.NoError(t, err)
	defer conn.CloseNow()
	f, err := conn.Read(dctx)
	require.NoError(t, err)
	assert.Equal(t, "alice", f.User)
	require.NoError(t, conn.Send(dctx, "d:alice:bob", "m1", "hi"))
	for f.Type != "sent" {
		f, err = conn.Read(dctx)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), f.Seq)

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("no clean stop in 20 s")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-token-key", "zz"}, {"-token-key", "00"}, {"-cluster", "0"}, {"-delivery", "maybe"}, {"extra"}} {
		err := run(context.Background(), append(args, "-redis", "127.0.0.1:1", "-media", ""), io.Discard, nil)
		assert.Error(t, err, "%v", args)
	}
}
