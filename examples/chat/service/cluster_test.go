package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func startCluster(t *testing.T, n int) (*service.Cluster, *service.Tokens) {
	t.Helper()
	db := redistest.New(t)
	tokens, err := service.NewTokens(testKey)
	require.NoError(t, err)
	c, err := service.Start(context.Background(), service.ClusterConfig{Gateways: n, Service: service.Config{
		Redis: db.Client, Prefix: db.Prefix, Authenticate: tokens.User, RedeliverAfter: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.Close(ctx))
	})
	return c, tokens
}

// Through the balancer a user always reaches the same gateway (Maglev on
// the user). Draining that gateway closes its connections with 1012; the
// client reconnects through the balancer to another gateway and gets
// every message sent meanwhile: the gateway leaves and nothing is lost.
func TestClusterAffinityAndDrain(t *testing.T) {
	c, tokens := startCluster(t, 3)
	tok := func(u string) string { s, err := tokens.Issue(u, time.Hour); require.NoError(t, err); return s }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hello := func(conn *client.Conn) service.Frame {
		f, err := conn.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, "hello", f.Type)
		return f
	}
	var gw string
	for i := range 3 {
		conn, err := client.Dial(ctx, c.URL(), tok("bob"))
		require.NoError(t, err)
		h := hello(conn)
		if i > 0 {
			assert.Equal(t, gw, h.Gateway, "bob always reaches the same gateway")
		}
		gw = h.Gateway
		require.NoError(t, conn.Close())
	}
	bob, err := client.Dial(ctx, c.URL(), tok("bob"))
	require.NoError(t, err)
	defer bob.CloseNow()
	hello(bob)
	idx := -1
	for i, g := range c.Gateways {
		if g.Gateway() == gw {
			idx = i
		}
	}
	// Alice stays on a gateway that is not drained, and waits for each
	// message to be stored.
	alice, err := client.Dial(ctx, c.GatewayURLs[(idx+1)%3], tok("alice"))
	require.NoError(t, err)
	defer alice.CloseNow()
	hello(alice)
	require.NoError(t, c.Drain(idx))
	_, err = bob.Read(ctx)
	require.Error(t, err)
	assert.EqualValues(t, 1012, websocket.CloseStatus(err), "the drained gateway says: reconnect")

	// Sent while bob has no connection.
	for i := 1; i <= 5; i++ {
		require.NoError(t, alice.Send(ctx, "d:alice:bob", fmt.Sprintf("m%d", i), "x"))
		for {
			f, err := alice.Read(ctx)
			require.NoError(t, err)
			if f.Type == "sent" {
				break
			}
		}
	}
	var order client.Order
	var conn *client.Conn
	require.Eventually(t, func() bool {
		conn, err = client.Dial(ctx, c.URL(), tok("bob"))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "bob reconnects through the balancer")
	defer conn.CloseNow()
	h := hello(conn)
	assert.NotEqual(t, gw, h.Gateway, "to another gateway")
	for order.Shown("d:alice:bob") < 5 {
		f, err := conn.Read(ctx)
		require.NoError(t, err)
		if f.Type == "msg" {
			if _, ack, _ := order.Accept(f); ack > 0 {
				require.NoError(t, conn.Ack(ctx, f.Conv, ack))
			}
		}
	}
	assert.Equal(t, int64(5), order.Shown("d:alice:bob"))
}
