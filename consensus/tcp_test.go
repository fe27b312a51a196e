package consensus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// Three real nodes over loopback TCP, each reached through a proxy (its
// advertised address): cutting a follower's proxy resets its connections,
// the majority keeps committing, and once restored the follower catches up.
func TestTCP_CutFollowerThroughProxyCatchesUp(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	var (
		nodes   []*Node
		proxies []*tcpproxy.Proxy
		servers []Server
	)
	for i := range 3 {
		addr := freeAddr(t)
		p, err := tcpproxy.New(addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		proxies = append(proxies, p)
		id := fmt.Sprintf("t%d", i+1)
		n, err := NewNode(Options{ID: id, Addr: addr, Advertise: p.Addr(), DataDir: filepath.Join(dir, id), Timing: testTiming()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close(context.Background()) })
		assert.Equal(t, p.Addr(), n.Addr(), "peers dial the proxy")
		nodes = append(nodes, n)
		servers = append(servers, Server{ID: id, Address: p.Addr()})
	}
	// One node bootstraps; the others learn the configuration from it.
	require.NoError(t, nodes[0].Bootstrap(ctx, servers...))
	var leader *Node
	eventually(t, ctx, "a leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	fi := 0
	for nodes[fi] == leader {
		fi++
	}
	follower := nodes[fi]
	majority := slices.DeleteFunc(slices.Clone(nodes), func(n *Node) bool { return n == follower })
	putOnLeaderOf(t, ctx, nodes, "k", "0")
	waitValue(t, ctx, follower, "k", "0")

	proxies[fi].Cut()
	for i := 1; i <= 5; i++ {
		// The majority commits without the cut follower (on a loaded
		// machine leadership may move between its two members).
		putOnLeaderOf(t, ctx, majority, "k", fmt.Sprint(i))
	}
	kv, err := follower.Read(ctx, "k", Stale)
	require.NoError(t, err)
	assert.Equal(t, "0", string(kv.Value), "the cut follower saw nothing")
	proxies[fi].Restore()
	waitValue(t, ctx, follower, "k", "5")
}

// putOnLeaderOf writes on whichever of nodes leads, again after a
// leadership change, until the write commits.
func putOnLeaderOf(t *testing.T, ctx context.Context, nodes []*Node, key, value string) {
	t.Helper()
	eventually(t, ctx, fmt.Sprintf("%s=%s committed", key, value), func() bool {
		for _, n := range nodes {
			if !n.IsLeader() {
				continue
			}
			_, err := n.Put(ctx, key, []byte(value))
			if err == nil {
				return true
			}
			require.True(t, errors.Is(err, ErrNotLeader) || errors.Is(err, ErrIndeterminate), "put %s=%s: %v", key, value, err)
		}
		return false
	})
}

func TestNewNode_BadAdvertise(t *testing.T) {
	_, err := NewNode(Options{ID: "a", Addr: "127.0.0.1:0", Advertise: "not an address", InMemory: true})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
