package registry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
)

const (
	webToken    = "web-writer-token-0123456789"
	readerToken = "reader-token-0123456789abc"
)

// Guide: Security Considerations (role-based authorization). A registry
// with access control: an instance registers only under the services its
// token allows, through any node; a reader lists and watches but cannot
// register; a caller without credentials is refused.
func TestHandler_AccessControl(t *testing.T) {
	c, ctx := newCluster(t, consensus.Options{})
	auth, err := consensus.NewAuth(
		consensus.User{Name: "web", Token: webToken, Role: consensus.RoleReadWrite, Prefix: "web"},
		consensus.User{Name: "reader", Token: readerToken, Role: consensus.RoleReadOnly},
	)
	require.NoError(t, err)
	servers, urls := serveClusterWith(t, ctx, c, registry.HandlerOptions{Auth: auth})
	client := func(token string) *registry.Client {
		cl, err := registry.NewClient(urls, registry.ClientOptions{Token: token})
		require.NoError(t, err)
		return cl
	}
	web, reader, anon := client(webToken), client(readerToken), client("")

	reg, err := web.Register(ctx, registry.Instance{Service: "web", ID: "w1", Addr: "10.0.0.1:80"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, web.Heartbeat(ctx, reg.Lease))
	_, err = web.Register(ctx, registry.Instance{Service: "db", ID: "d1", Addr: "10.0.0.2:5432"}, ttl)
	assert.ErrorIs(t, err, consensus.ErrForbidden, "a writer outside its prefix")
	_, err = reader.Register(ctx, registry.Instance{Service: "web", ID: "w2", Addr: "10.0.0.3:80"}, ttl)
	assert.ErrorIs(t, err, consensus.ErrForbidden, "a reader registers")
	assert.ErrorIs(t, reader.Deregister(ctx, "web", "w1"), consensus.ErrForbidden)
	assert.ErrorIs(t, reader.Heartbeat(ctx, reg.Lease), consensus.ErrForbidden)
	_, _, err = anon.List(ctx, "web")
	assert.ErrorIs(t, err, consensus.ErrUnauthenticated)
	_, _, err = client("wrong-token-0123456789abcd").List(ctx, "web")
	assert.ErrorIs(t, err, consensus.ErrUnauthenticated)
	err = anon.Watch(ctx, "web", func([]registry.Instance) {})
	assert.ErrorIs(t, err, consensus.ErrUnauthenticated, "a watch without credentials ends at once")

	insts, _, err := reader.List(ctx, "web")
	require.NoError(t, err)
	require.Len(t, insts, 1)
	assert.Equal(t, "w1", insts[0].ID)

	// Through a follower, with the caller's token forwarded.
	l, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	for _, n := range c.Nodes() {
		if n.ID() == l.ID() {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, servers[n.ID()].URL+"/v1/services/web/instances/w1", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+readerToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a reader through a follower")

		// A writer through a follower: the leader authorizes the token the
		// follower forwarded, and its answer comes back as it was.
		req, err = http.NewRequestWithContext(ctx, http.MethodPut, servers[n.ID()].URL+"/v1/services/web/instances/w9",
			strings.NewReader(`{"addr":"10.0.0.9:80","ttl_ms":60000}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+webToken)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "a writer through a follower")
		_, challenged := resp.Header["Www-Authenticate"]
		assert.False(t, challenged, "no challenge on a success")
		require.NoError(t, web.Deregister(ctx, "web", "w9"))
		break
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var got []registry.Instance
	err = reader.Watch(wctx, "web", func(insts []registry.Instance) {
		got = insts
		cancel()
	})
	require.True(t, errors.Is(err, context.Canceled), "watch: %v", err)
	require.Len(t, got, 1, "a reader watches")
	require.NoError(t, web.Deregister(ctx, "web", "w1"))
}
