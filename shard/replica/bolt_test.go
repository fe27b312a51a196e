package replica

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// openBoltNode opens the node name on the database at path.
func openBoltNode(t testing.TB, tc *testCluster, path, name string) (*Node, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	store, err := NewBoltStore(db, "records")
	require.NoError(t, err)
	hints, err := NewBoltStore(db, "hints")
	require.NoError(t, err)
	node, err := NewNode(NodeConfig{Name: name, Store: store, Hints: hints, Placement: tc.ring, Transport: tc.net.Endpoint(name)})
	require.NoError(t, err)
	return node, db
}

// TestBoltStore_Contract runs the Store contract on memory and on disk.
func TestBoltStore_Contract(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	bs, err := NewBoltStore(db, "records")
	require.NoError(t, err)
	for name, s := range map[string]Store{"mem": new(MemStore), "bolt": bs} {
		t.Run(name, func(t *testing.T) {
			r := Record{Siblings: []Sibling{{Value: []byte("v"), Dot: Dot{"n1", 1}, Time: 7}}, Clock: VersionVector{"n1": 1}}
			_, ok, err := s.Get("b")
			require.NoError(t, err)
			assert.False(t, ok)
			for _, k := range []string{"c", "a", "b"} {
				require.NoError(t, s.Put(k, r))
			}
			got, ok, err := s.Get("b")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, r, got)
			require.NoError(t, s.Delete("c"))
			var keys []string
			require.NoError(t, s.Range(func(k string, _ Record) bool { keys = append(keys, k); return true }))
			assert.Equal(t, []string{"a", "b"}, keys, "key order")
			keys = nil
			require.NoError(t, s.Range(func(k string, _ Record) bool { keys = append(keys, k); return false }))
			assert.Equal(t, []string{"a"}, keys, "Range stops when fn returns false")
		})
	}
	_, err = NewBoltStore(nil, "x")
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewBoltStore(db, "")
	assert.ErrorIs(t, err, ErrInvalidArgument)

	// A record that does not decode is an error, not a silent empty one.
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("records")).Put([]byte("bad"), []byte("{")) }))
	_, _, err = bs.Get("bad")
	assert.ErrorIs(t, err, errCorrupt)
	assert.ErrorIs(t, bs.Range(func(string, Record) bool { return true }), errCorrupt)
}

// TestBoltStore_SurvivesAKilledProcess has a child process coordinate
// writes on a node on disk and report each one it acknowledged, kills it
// with SIGKILL mid-stream, and checks that a node reopened on the same file
// holds every acknowledged write and coordinates the next one with a new
// dot.
func TestBoltStore_SurvivesAKilledProcess(t *testing.T) {
	if os.Getenv("REPLICA_CHILD_DB") != "" {
		return // the child runs TestBoltChild instead
	}
	path := filepath.Join(t.TempDir(), "n1.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REPLICA_CHILD_DB="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() && acked < 50 {
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			acked = n
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.GreaterOrEqual(t, acked, 50)

	tc := newTestCluster(t, 3, 3)
	node, db := openBoltNode(t, tc, path, "n1")
	defer db.Close()
	for i := 1; i <= acked; i++ {
		resp, err := node.Handle(context.Background(), &Request{Op: OpGet, Key: fmt.Sprintf("k%d", i)})
		require.NoError(t, err)
		require.True(t, resp.Found, "acknowledged write k%d lost", i)
		assert.Equal(t, []string{strconv.Itoa(i)}, strs(resp.Record.values()))
	}
	// The counter survived too: a new write to k1 gets dot n1:2.
	resp, err := node.Handle(context.Background(), &Request{Op: OpCoordinate, Key: "k1", Value: []byte("again")})
	require.NoError(t, err)
	assert.Len(t, resp.Record.Siblings, 2)
	assert.Equal(t, uint64(2), resp.Record.Clock["n1"])
}

// TestBoltChild is the child process of TestBoltStore_SurvivesAKilledProcess:
// it writes until it is killed, printing the number of each write once
// Handle has returned.
func TestBoltChild(t *testing.T) {
	path := os.Getenv("REPLICA_CHILD_DB")
	if path == "" {
		t.Skip("run by TestBoltStore_SurvivesAKilledProcess")
	}
	tc := newTestCluster(t, 3, 3)
	node, db := openBoltNode(t, tc, path, "n1")
	defer db.Close()
	for i := 1; i <= 100000; i++ {
		_, err := node.Handle(context.Background(), &Request{Op: OpCoordinate, Key: fmt.Sprintf("k%d", i), Value: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
		fmt.Println(i)
	}
}

// TestBoltStore_NodeRestartsWithItsData runs a cluster with one node on
// disk, closes and reopens that node, and reads the write back from it
// alone.
func TestBoltStore_NodeRestartsWithItsData(t *testing.T) {
	tc := newTestCluster(t, 3, 3)
	path := filepath.Join(t.TempDir(), "n2.db")
	node, db := openBoltNode(t, tc, path, "n2")
	tc.net.Register("n2", node)
	c := tc.coordinator(t, Config{})
	ctx := context.Background()
	_, err := c.Put(ctx, "k", []byte("durable"), Context{}, Options{Level: All})
	require.NoError(t, err)

	tc.net.Crash("n2")
	require.NoError(t, db.Close())
	node, db = openBoltNode(t, tc, path, "n2")
	defer db.Close()
	tc.net.Register("n2", node)
	tc.net.Crash("n1")
	tc.net.Crash("n3")
	got, err := c.Get(ctx, "k", Options{Level: One})
	require.NoError(t, err)
	assert.Equal(t, []string{"durable"}, strs(got.Values))
}
