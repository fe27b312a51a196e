package replica

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/shard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCluster is k nodes n1…nk on a ring, in memory, on one Network.
type testCluster struct {
	net    *Network
	ring   *shard.Ring
	nodes  map[string]*Node
	stores map[string]*MemStore
	hints  map[string]*MemStore
}

// newTestCluster starts k nodes replicating each key n times.
func newTestCluster(t testing.TB, k, n int) *testCluster {
	t.Helper()
	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
	}
	ring, err := shard.NewRing(shard.NodesNamed(names...), shard.RingOptions{})
	require.NoError(t, err)
	tc := &testCluster{net: new(Network), ring: ring, nodes: map[string]*Node{},
		stores: map[string]*MemStore{}, hints: map[string]*MemStore{}}
	for _, name := range names {
		tc.start(t, name, n)
	}
	return tc
}

// start (re)starts the node name on fresh in-memory stores: a process
// restarted after a crash that lost its memory.
func (tc *testCluster) start(t testing.TB, name string, n int) *Node {
	t.Helper()
	tc.stores[name], tc.hints[name] = new(MemStore), new(MemStore)
	node, err := NewNode(NodeConfig{Name: name, Store: tc.stores[name], Hints: tc.hints[name],
		Placement: tc.ring, N: n, Transport: tc.net.Endpoint(name)})
	require.NoError(t, err)
	tc.nodes[name] = node
	tc.net.Register(name, node)
	return node
}

// coordinator returns a coordinator at endpoint "client", closed at the
// end of the test.
func (tc *testCluster) coordinator(t testing.TB, cfg Config) *Coordinator {
	t.Helper()
	return tc.coordinatorAt(t, "client", cfg)
}

func (tc *testCluster) coordinatorAt(t testing.TB, endpoint string, cfg Config) *Coordinator {
	t.Helper()
	cfg.Placement, cfg.Transport = tc.ring, tc.net.Endpoint(endpoint)
	c, err := NewCoordinator(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	return c
}

// prefs returns the first n nodes of key's preference list.
func (tc *testCluster) prefs(key string, n int) []string {
	nodes := tc.ring.Nodes()
	var out []string
	for _, i := range tc.ring.AppendN(nil, key, n) {
		out = append(out, nodes[i].Name)
	}
	return out
}

// stored returns the values node holds for key.
func (tc *testCluster) stored(t testing.TB, node, key string) []string {
	t.Helper()
	r, _, err := tc.stores[node].Get(key)
	require.NoError(t, err)
	return strs(r.values())
}

// strs turns values into strings, for assertions.
func strs(vs [][]byte) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
