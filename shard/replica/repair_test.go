package replica

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadRepair_ConvergesAStaleReplica(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", disabled), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc := newTestCluster(t, 3, 3)
				c := tc.coordinator(t, Config{Timeout: 50 * time.Millisecond, DisableReadRepair: disabled})
				ctx := context.Background()
				p := tc.prefs("k", 3)
				tc.net.Partition([]string{"client"}, []string{p[2]})
				_, err := c.Put(ctx, "k", []byte("v"), Context{}, Options{Level: Quorum})
				require.NoError(t, err)
				synctest.Wait()
				tc.net.Heal()
				require.Empty(t, tc.stored(t, p[2], "k"), "p[2] missed the write")

				got, err := c.Get(ctx, "k", Options{Level: All})
				require.NoError(t, err)
				assert.Equal(t, []string{"v"}, strs(got.Values))
				synctest.Wait()
				if disabled {
					assert.Empty(t, tc.stored(t, p[2], "k"))
				} else {
					assert.Equal(t, []string{"v"}, tc.stored(t, p[2], "k"), "read repair wrote the merge back")
				}
			})
		})
	}
}

func TestReadRepair_LateReplicaIsRepairedToo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{})
		ctx := context.Background()
		p := tc.prefs("k", 3)
		tc.net.Crash(p[2])
		_, err := c.Put(ctx, "k", []byte("v"), Context{}, Options{Level: Quorum})
		require.NoError(t, err)
		tc.start(t, p[2], 3)
		// p[2] answers last; the read returns at R = 1 before it does.
		tc.net.SetLatency(func(from, to string) time.Duration {
			if to == p[2] {
				return 20 * time.Millisecond
			}
			return 0
		})
		got, err := c.Get(ctx, "k", Options{Level: One})
		require.NoError(t, err)
		assert.Equal(t, []string{"v"}, strs(got.Values))
		time.Sleep(time.Second) // the late answer, then the repair, arrive
		assert.Equal(t, []string{"v"}, tc.stored(t, p[2], "k"))
	})
}

func TestSloppyQuorum_HintedHandoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 5, 3)
		ctx := context.Background()
		key := "k"
		p := tc.prefs(key, 5) // p[:3] replicas, p[3:] fallbacks in ring order

		strict := tc.coordinatorAt(t, "strict", Config{})
		sloppy := tc.coordinatorAt(t, "sloppy", Config{SloppyQuorum: true})
		tc.net.Crash(p[1])
		_, err := strict.Put(ctx, key, []byte("v"), Context{}, Options{Level: All})
		require.ErrorIs(t, err, ErrUnavailable, "a strict quorum cannot reach ALL with a replica down")
		_, err = sloppy.Put(ctx, key, []byte("w"), Context{}, Options{Level: All})
		require.NoError(t, err, "a sloppy quorum counts the fallback's hinted copy")
		synctest.Wait()

		hint, ok, err := tc.hints[p[3]].Get(hintKey(p[1], key))
		require.NoError(t, err)
		require.True(t, ok, "the first fallback holds a hint for the crashed replica")
		assert.Contains(t, strs(hint.values()), "w")
		assert.Empty(t, tc.stored(t, p[3], key), "a hint is not the fallback's own data")

		// While p[1] is down, handoff keeps the hint.
		n, err := tc.nodes[p[3]].HandOff(ctx)
		require.ErrorIs(t, err, ErrNodeDown)
		assert.Zero(t, n)
		_, ok, _ = tc.hints[p[3]].Get(hintKey(p[1], key))
		assert.True(t, ok)

		// p[1] comes back (without its memory): handoff delivers the hint.
		tc.start(t, p[1], 3)
		n, err = tc.nodes[p[3]].HandOff(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Contains(t, tc.stored(t, p[1], key), "w")
		_, ok, _ = tc.hints[p[3]].Get(hintKey(p[1], key))
		assert.False(t, ok, "a delivered hint is deleted")
		n, err = tc.nodes[p[3]].HandOff(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}

func TestAntiEntropy_ConvergesDivergentReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3, 3)
		c := tc.coordinator(t, Config{DisableReadRepair: true})
		ctx := context.Background()
		const keys = 400
		for i := range keys {
			_, err := c.Put(ctx, fmt.Sprintf("key%03d", i), []byte("v1"), Context{}, Options{Level: All})
			require.NoError(t, err)
		}
		// n3 misses updates of 1 key in 40, and n1 misses one new key.
		tc.net.Crash("n3")
		var changed []string
		for i := 0; i < keys; i += 40 {
			k := fmt.Sprintf("key%03d", i)
			changed = append(changed, k)
			_, err := c.Put(ctx, k, []byte("v2"), Context{}, Options{Level: Quorum})
			require.NoError(t, err)
		}
		synctest.Wait() // every copy meant for n3 has failed
		tc.net.Register("n3", tc.nodes["n3"])
		require.NoError(t, tc.stores["n3"].Put("only-on-n3", Record{
			Siblings: []Sibling{{Value: []byte("x"), Dot: Dot{"n3", 1}}}, Clock: VersionVector{"n3": 1}}))
		synctest.Wait()

		st, err := tc.nodes["n1"].AntiEntropy(ctx, "n3")
		require.NoError(t, err)
		assert.Equal(t, len(changed)+1, st.Keys)
		assert.Equal(t, len(changed), st.Pushed, "n3's old versions are overwritten")
		assert.Equal(t, len(changed)+1, st.Pulled, "every key n3 holds that differs is merged here")
		// 400 keys make a tree of depth 7 (about 4 keys a leaf), walked 4
		// levels a trip: tree levels 0, 4 and 7, one bucket listing, then
		// one read per key pulled and one write per key pushed.
		assert.Equal(t, 3+1+11+10, st.RoundTrips)
		for _, k := range changed {
			assert.ElementsMatch(t, tc.stored(t, "n1", k), tc.stored(t, "n3", k), k)
			assert.Contains(t, tc.stored(t, "n3", k), "v2", k)
		}
		assert.Equal(t, []string{"x"}, tc.stored(t, "n1", "only-on-n3"))

		// The exchange sent far less than every record.
		full := 0
		require.NoError(t, tc.stores["n1"].Range(func(k string, r Record) bool {
			full += len(k) + recordBytes(r)
			return true
		}))
		assert.Less(t, st.Bytes, full/2, "%+v vs %d bytes of records", st, full)

		// Converged: the next exchange stops at the root.
		st, err = tc.nodes["n1"].AntiEntropy(ctx, "n3")
		require.NoError(t, err)
		assert.Equal(t, AntiEntropyStats{RoundTrips: 1, Bytes: 4 + 8}, st)

		// And the replicas no longer differ in what they share.
		for _, pair := range [][2]string{{"n1", "n2"}, {"n2", "n3"}} {
			_, err := tc.nodes[pair[0]].AntiEntropy(ctx, pair[1])
			require.NoError(t, err)
		}
		// Either side may start an exchange, the placement's first node too.
		for _, pair := range [][2]string{{"n1", "n2"}, {"n2", "n3"}, {"n3", "n1"}} {
			st, err := tc.nodes[pair[0]].AntiEntropy(ctx, pair[1])
			require.NoError(t, err)
			assert.Zero(t, st.Keys, pair)
		}
	})
}

func TestAntiEntropy_BadInput(t *testing.T) {
	tc := newTestCluster(t, 3, 3)
	ctx := context.Background()
	_, err := tc.nodes["n1"].AntiEntropy(ctx, "n1")
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = tc.nodes["n1"].AntiEntropy(ctx, "n9")
	assert.ErrorIs(t, err, ErrInvalidArgument)
	for _, req := range []*Request{
		{Op: OpTree, Peer: "n2", Depth: 99},
		{Op: OpTree, Peer: "n2", Depth: 4, Level: 5},
		{Op: OpTree, Peer: "n2", Depth: 4, Level: 1, Indices: []int{2}},
		{Op: OpBucket, Peer: "n9", Depth: 4},
		{Op: OpGet},
		{Op: 99, Key: "k"},
		{Op: OpReplicate, Key: "k"},
		{Op: OpReplicate, Key: "k", Record: &Record{Siblings: []Sibling{{Dot: Dot{"n1", 1}}}}},
		{Op: OpCoordinate, Key: "k", Context: VersionVector{"n1": 0}},
	} {
		_, err := tc.nodes["n1"].Handle(ctx, req)
		assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", req)
	}
	_, err = tc.nodes["n1"].Handle(ctx, nil)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	for _, req := range []*Request{
		{Op: OpTree, Peer: "n2", Depth: 0, Level: 0, Indices: []int{0}},
		{Op: OpTree, Peer: "n2", Depth: 17, Level: 0, Indices: []int{0}},
		{Op: OpBucket, Peer: "n2", Depth: 0},
		{Op: OpBucket, Peer: "n2", Depth: 17},
		{Op: OpTree, Peer: "n2", Depth: 2, Level: 2, Indices: []int{-1}},
	} {
		_, err := tc.nodes["n1"].Handle(ctx, req)
		assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", req)
	}
	// The extremes of the tree's shape are valid.
	for _, req := range []*Request{
		{Op: OpTree, Peer: "n2", Depth: 16, Level: 16, Indices: []int{1<<16 - 1}},
		{Op: OpTree, Peer: "n2", Depth: 1, Level: 0, Indices: []int{0}},
		{Op: OpBucket, Peer: "n2", Depth: 16, Indices: []int{0}},
		{Op: OpBucket, Peer: "n2", Depth: 1, Indices: []int{0, 1}},
	} {
		resp, err := tc.nodes["n1"].Handle(ctx, req)
		require.NoError(t, err, "%+v", req)
		if req.Op == OpTree {
			assert.Len(t, resp.Hashes, 1, "%+v", req)
		}
	}
	n, err := NewNode(NodeConfig{Name: "n1", Placement: tc.ring})
	require.NoError(t, err)
	_, err = n.AntiEntropy(ctx, "n2")
	assert.ErrorIs(t, err, ErrInvalidArgument, "no transport")
	_, err = n.HandOff(ctx)
	assert.ErrorIs(t, err, ErrInvalidArgument, "no transport")
}

// An exchange's cost, counted as AntiEntropyStats documents it: 4 bytes
// per tree index, 8 per hash or digest, and each key and record sent.
func TestAntiEntropy_CountsItsCost(t *testing.T) {
	tc := newTestCluster(t, 2, 2)
	ctx := context.Background()
	require.NoError(t, tc.stores["n2"].Put("k", Record{
		Siblings: []Sibling{{Value: []byte("x"), Dot: Dot{"n2", 2}, Past: VersionVector{"n2": 1, "n3": 1}}},
		Clock:    VersionVector{"n2": 2, "n3": 1}}))
	require.NoError(t, tc.stores["n1"].Put("a", Record{
		Siblings: []Sibling{{Value: []byte("yy"), Dot: Dot{"n1", 1}}}, Clock: VersionVector{"n1": 1}}))
	st, err := tc.nodes["n1"].AntiEntropy(ctx, "n2")
	require.NoError(t, err)
	// n1 holds one key: a tree of depth 1. Tree level 0 (one index, one
	// hash: 12 bytes), level 1 (two and two: 24), the one differing leaf
	// listed (4) with n2's key and digest (1 + 8); k pulled (its key, 8
	// per clock entry, the sibling's value, dot and 8 per entry of its
	// past: 1 + 16 + 1 + 8 + 16), a pushed (1 + 8 + 2 + 8).
	want := AntiEntropyStats{RoundTrips: 5, Keys: 2, Pulled: 1, Pushed: 1,
		Bytes: 12 + 24 + 4 + (1 + 8) + (1 + 16 + 1 + 8 + 16) + (1 + 8 + 2 + 8)}
	assert.Equal(t, want, st)
	assert.Equal(t, []string{"yy"}, tc.stored(t, "n2", "a"))
	assert.Equal(t, []string{"x"}, tc.stored(t, "n1", "k"))
}
