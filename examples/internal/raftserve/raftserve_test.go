package raftserve

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/consensus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func config(t *testing.T, id string) Config {
	return Config{
		Node:     consensus.Options{ID: id, Addr: "127.0.0.1:0", DataDir: t.TempDir(), Timing: consensus.LANTiming()},
		HTTPAddr: "127.0.0.1:0",
		Handler: func(node *consensus.Node, client *http.Client, auth *consensus.Auth) (http.Handler, error) {
			return consensus.NewHandler(node, consensus.HandlerOptions{Client: client, Auth: auth})
		},
	}
}

// A bootstrapped node leads and publishes its API address; two more join
// through it and learn that address; a graceful close of the leader hands
// leadership over to one of the others, which publishes its own address.
func TestStartJoinClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c1 := config(t, "n1")
	c1.Bootstrap = true
	s1, err := Start(ctx, c1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s1.Node.APIAddr("n1") == s1.HTTPAddr() }, 20*time.Second, 10*time.Millisecond,
		"the leader publishes its API address")

	var rest []*Server
	for _, id := range []string{"n2", "n3"} {
		c := config(t, id)
		c.Join = s1.HTTPAddr()
		s, err := Start(ctx, c)
		require.NoError(t, err)
		rest = append(rest, s)
		require.Eventually(t, func() bool { return s.Node.APIAddr("n1") == s1.HTTPAddr() }, 20*time.Second, 10*time.Millisecond,
			"%s learns the leader's API address", id)
	}

	require.NoError(t, s1.Close())
	assert.False(t, s1.Node.IsLeader())
	var leader, other *Server
	require.Eventually(t, func() bool {
		for i, s := range rest {
			if s.Node.IsLeader() {
				leader, other = s, rest[1-i]
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "leadership handed over")
	id := leader.Node.ID()
	require.Eventually(t, func() bool { return other.Node.APIAddr(id) == leader.HTTPAddr() }, 20*time.Second, 10*time.Millisecond,
		"the new leader publishes its API address")
	require.NoError(t, leader.Kill())
	require.NoError(t, other.Close())
}

// A join that the member refuses (4xx) fails at once, naming the member;
// Bootstrap with Join, or a Handler that fails, stops the start and leaves
// nothing running.
func TestStartFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := config(t, "n1")
	c.Bootstrap, c.Join = true, "127.0.0.1:1"
	_, err := Start(ctx, c)
	assert.ErrorContains(t, err, "exclusive")

	boom := errors.New("boom")
	c = config(t, "n1")
	c.Handler = func(*consensus.Node, *http.Client, *consensus.Auth) (http.Handler, error) { return nil, boom }
	_, err = Start(ctx, c)
	assert.ErrorIs(t, err, boom)

	// A join to a path that is no member's API: 404, at once.
	mc := config(t, "x")
	mc.Bootstrap = true
	member, err := Start(ctx, mc)
	require.NoError(t, err)
	defer func() { require.NoError(t, member.Close()) }()
	c = config(t, "n1")
	c.Join = member.HTTPAddr() + "/nowhere"
	_, err = Start(ctx, c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "join through http://"+member.HTTPAddr()+"/nowhere: 404")
}
