package shard

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDirectory(t *testing.T) {
	_, err := NewDirectory(abc, map[string]string{"tenant:1": "nowhere"}, DirectoryOptions{})
	assert.ErrorIs(t, err, ErrUnknownShard)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "nowhere")

	other, err := NewRing([]Node{{Name: "a", Weight: 1}, {Name: "q", Weight: 1}}, RingOptions{})
	require.NoError(t, err)
	_, err = NewDirectory(abc, nil, DirectoryOptions{Fallback: other})
	assert.ErrorIs(t, err, ErrUnknownShard, "a fallback with a shard the directory lacks")

	d, err := NewDirectory(abc, map[string]string{"tenant:big": "c"}, DirectoryOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, d.Locate("tenant:big"))
	assert.Equal(t, -1, d.Locate("tenant:small"))
	i, err := d.Lookup("tenant:small")
	assert.ErrorIs(t, err, ErrNoShardForKey)
	assert.Equal(t, -1, i)

	// A range fallback behind explicit entries: key and range routing.
	rng, err := NewRangeSplits([]Node{{Name: "b", Weight: 1}, {Name: "a", Weight: 1}}, []string{"m"})
	require.NoError(t, err)
	d, err = NewDirectory(abc, map[string]string{"tenant:big": "c"}, DirectoryOptions{Fallback: rng})
	require.NoError(t, err)
	assert.Equal(t, 2, d.Locate("tenant:big"))
	assert.Equal(t, 0, d.Locate("x"), "range [m, ∞) is shard a: index 1 in the fallback, index 0 here")
	assert.Equal(t, 1, d.Locate("c"), "range [\"\", m) is shard b")

	moved, err := d.With("tenant:big", "a")
	require.NoError(t, err)
	assert.Equal(t, 0, moved.Locate("tenant:big"))
	assert.Equal(t, 2, d.Locate("tenant:big"), "With leaves the original unchanged")
	_, err = d.With("k", "zz")
	assert.ErrorIs(t, err, ErrUnknownShard)
	name, err := moved.LookupShard(context.Background(), "tenant:big")
	require.NoError(t, err)
	assert.Equal(t, "a", name)
}

// The table ignores weights and the fallback honours its own, so the
// directory accepts exactly the fallback's weights and 1 elsewhere.
func TestDirectory_Weights(t *testing.T) {
	weighted := []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}}
	ring, err := NewRing(weighted, RingOptions{})
	require.NoError(t, err)
	withC := append(slices.Clone(weighted), Node{Name: "c", Weight: 1})

	d, err := NewDirectory(withC, map[string]string{"tenant:big": "c"}, DirectoryOptions{Fallback: ring})
	require.NoError(t, err, "the fallback's weights, and 1 for a shard outside it")
	assert.Equal(t, withC, d.Nodes(), "Nodes reports the weights the fallback honours")
	c := make([]int, 3)
	for _, k := range keys(20_000) {
		c[d.Locate(k)]++
	}
	assert.InDelta(t, 0.75, float64(c[1])/20_000, 0.03, "unlisted keys follow the weighted fallback: %v", c)
	assert.Zero(t, c[2], "shard c takes only its listed keys")

	for _, tc := range []struct {
		name  string
		nodes []Node
		opts  DirectoryOptions
		msg   string
	}{
		{"weight without a fallback", []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}}, DirectoryOptions{},
			`shard "b" has weight 3 (want 1)`},
		{"weight unlike the fallback's", []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}}, DirectoryOptions{Fallback: ring},
			`shard "b" has weight 2 in the directory but 3 in its fallback`},
		{"fallback weight dropped", NodesNamed("a", "b"), DirectoryOptions{Fallback: ring},
			`shard "b" has weight 1 in the directory but 3 in its fallback`},
		{"weight on a shard outside the fallback", append(slices.Clone(weighted), Node{Name: "c", Weight: 4}), DirectoryOptions{Fallback: ring},
			`shard "c" has weight 4 (want 1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDirectory(tc.nodes, nil, tc.opts)
			assert.ErrorIs(t, err, ErrInvalidWeight)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}

// A cached directory takes its shard set for the names: weights are
// validated and reported as given, not used.
func TestCachedDirectory_Weights(t *testing.T) {
	nodes := []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}}
	c, err := NewCachedDirectory(&flakySource{to: "b"}, nodes, CachedDirectoryOptions{})
	require.NoError(t, err)
	assert.Equal(t, nodes, c.Nodes())
	i, err := c.Lookup(context.Background(), "k")
	require.NoError(t, err)
	assert.Equal(t, 1, i, "the source, not the weights, decides")
}

// flakySource counts lookups and fails on demand.
type flakySource struct {
	calls atomic.Int64
	down  atomic.Bool
	to    string
}

func (f *flakySource) LookupShard(_ context.Context, key string) (string, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return "", errors.New("directory unavailable")
	}
	return f.to, nil
}

func TestCachedDirectory(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	src := &flakySource{to: "b"}
	_, err := NewCachedDirectory(nil, abc, CachedDirectoryOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewCachedDirectory(src, abc, CachedDirectoryOptions{TTL: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)

	c, err := NewCachedDirectory(src, abc, CachedDirectoryOptions{TTL: time.Second, Now: clock})
	require.NoError(t, err)
	ctx := context.Background()
	for range 5 {
		i, err := c.Lookup(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, 1, i)
	}
	assert.Equal(t, int64(1), src.calls.Load(), "one source lookup, four cache hits")
	assert.Equal(t, DirectoryStats{Hits: 4, Misses: 1, Cached: 1}, c.Stats())

	now = now.Add(2 * time.Second)
	src.down.Store(true)
	i, err := c.Lookup(ctx, "k")
	assert.Error(t, err, "without ServeStale an outage fails expired keys")
	assert.Equal(t, -1, i)

	var events []bool
	stale, err := NewCachedDirectory(src, abc, CachedDirectoryOptions{TTL: time.Second, Now: clock, ServeStale: true,
		OnSourceError: func(key string, err error, servedStale bool) { events = append(events, servedStale) }})
	require.NoError(t, err)
	src.down.Store(false)
	_, err = stale.Lookup(ctx, "k")
	require.NoError(t, err)
	now = now.Add(2 * time.Second)
	src.down.Store(true)
	i, err = stale.Lookup(ctx, "k")
	require.NoError(t, err, "ServeStale answers from the expired entry during an outage")
	assert.Equal(t, 1, i)
	assert.Equal(t, uint64(1), stale.Stats().StaleHits)
	assert.Equal(t, []bool{true}, events, "the hook reports the outage")

	src.down.Store(false)
	src.to = "unknown"
	stale.Invalidate("k")
	i, err = stale.Lookup(ctx, "k")
	assert.ErrorIs(t, err, ErrUnknownShard)
	assert.Equal(t, -1, i)
}

// Every DirectorySource names the shard of a listed key and reports an
// unlisted one with ErrNoShardForKey.
func TestDirectorySource_Contract(t *testing.T) {
	for _, kind := range []struct {
		name string
		new  func(t *testing.T, entries map[string]string) DirectorySource
	}{
		{"mem", func(t *testing.T, entries map[string]string) DirectorySource {
			d, err := NewDirectory(abc, entries, DirectoryOptions{})
			require.NoError(t, err)
			return d
		}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			src := kind.new(t, map[string]string{"tenant:1": "b", "tenant:2": "c"})
			ctx := context.Background()
			s, err := src.LookupShard(ctx, "tenant:2")
			require.NoError(t, err)
			assert.Equal(t, "c", s)
			_, err = src.LookupShard(ctx, "tenant:3")
			assert.ErrorIs(t, err, ErrNoShardForKey)
			assert.ErrorContains(t, err, "tenant:3")
		})
	}
}
