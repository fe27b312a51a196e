package shard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeKinds builds fresh stores of each implementation; every store test
// runs over all of them.
var storeKinds = []struct {
	name string
	new  func(t *testing.T) func(shard string) Store
}{
	{"mem", func(t *testing.T) func(string) Store {
		return func(string) Store { return &MemStore{} }
	}},
}

func TestStore_Contract(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)("s1")
			ctx := context.Background()
			_, err := s.Get(ctx, "missing")
			assert.ErrorIs(t, err, ErrNotFound)
			require.NoError(t, s.Delete(ctx, "missing"), "deleting an absent key is not an error")
			for _, k := range []string{"b", "a", "c", "ab", "d\x00x"} {
				require.NoError(t, s.Put(ctx, k, []byte("v-"+k)))
			}
			require.NoError(t, s.Put(ctx, "b", []byte("v2")))
			v, err := s.Get(ctx, "b")
			require.NoError(t, err)
			assert.Equal(t, "v2", string(v))

			all, err := s.Scan(ctx, "", "", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "ab", "b", "c", "d\x00x"}, keysOf(all))
			part, err := s.Scan(ctx, "ab", "c", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"ab", "b"}, keysOf(part))
			assert.Equal(t, "v2", string(part[1].Value))
			lim, err := s.Scan(ctx, "a\x00", "", 2)
			require.NoError(t, err)
			assert.Equal(t, []string{"ab", "b"}, keysOf(lim))

			require.NoError(t, s.Delete(ctx, "b"))
			_, err = s.Get(ctx, "b")
			assert.ErrorIs(t, err, ErrNotFound)
			all, err = s.Scan(ctx, "", "", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "ab", "c", "d\x00x"}, keysOf(all))

			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			assert.Error(t, s.Put(cancelled, "x", nil), "a cancelled context stops the call")
		})
	}
}

func keysOf(kvs []KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func TestMemStore_DelayAndFault(t *testing.T) {
	var s MemStore
	boom := errors.New("boom")
	s.SetFault(boom)
	assert.ErrorIs(t, s.Put(context.Background(), "k", nil), boom)
	s.SetFault(nil)
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, "k")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// Every Checkpoint implementation keeps the last saved key per shard.
func TestCheckpoint_Contract(t *testing.T) {
	for _, kind := range []struct {
		name string
		new  func(t *testing.T) Checkpoint
	}{
		{"mem", func(*testing.T) Checkpoint { return &MemCheckpoint{} }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			cp := kind.new(t)
			ctx := context.Background()
			_, ok, err := cp.Load(ctx, "s1")
			require.NoError(t, err)
			assert.False(t, ok)
			require.NoError(t, cp.Save(ctx, "s1", "key:41"))
			require.NoError(t, cp.Save(ctx, "s1", "key:42"))
			require.NoError(t, cp.Save(ctx, "s2", ""))
			k, ok, err := cp.Load(ctx, "s1")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, "key:42", k)
			k, ok, err = cp.Load(ctx, "s2")
			require.NoError(t, err)
			assert.True(t, ok, "an empty key is a saved checkpoint")
			assert.Empty(t, k)
		})
	}
}

// fill puts n keys through r.
func fill(t *testing.T, put func(ctx context.Context, k string, v []byte) error, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, put(context.Background(), fmt.Sprintf("k%05d", i), []byte(fmt.Sprint(i))))
	}
}
