package cache

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A value not made by its constructor returns an error wrapping
// ErrInvalidConfig, or does nothing, at once: it never panics or blocks.
// (WriteBehind has its own test.)
func TestZeroValuesReturnAtOnce(t *testing.T) {
	ctx := context.Background()
	load := func(context.Context, string) (int, error) { return 1, nil }

	var a Aside[string, int]
	_, err := a.Get(ctx, "k", load)
	require.ErrorIs(t, err, ErrInvalidConfig)
	a.Forget("k")
	assert.Zero(t, a.Stats())

	var rt ReadThrough[string, int]
	_, err = rt.Get(ctx, "k")
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Zero(t, rt.Stats())
	rt.Forget("k")

	var wt WriteThrough[string, int]
	require.ErrorIs(t, wt.Set(ctx, "k", 1), ErrInvalidConfig)
	require.ErrorIs(t, wt.Delete(ctx, "k"), ErrInvalidConfig)

	var ra RefreshAhead[string, int]
	_, err = ra.Get(ctx, "k")
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.NoError(t, ra.Close(ctx))
	require.NoError(t, ra.Close(ctx))
	assert.Zero(t, ra.Stats())

	var m Memory[string, int]
	_, ok := m.Get("k")
	assert.False(t, ok)
	require.ErrorIs(t, m.Set("k", 1), ErrInvalidConfig)
	require.ErrorIs(t, m.SetWithTTL("k", 1, time.Second), ErrInvalidConfig)
	require.ErrorIs(t, m.AsStore().Set(ctx, "k", 1, 0), ErrInvalidConfig)
	_, _, _, err = m.AsStore().Get(ctx, "k")
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorIs(t, m.AsStore().Delete(ctx, "k"), ErrInvalidConfig)
	assert.False(t, m.Delete("k"))
	assert.Zero(t, m.DeleteFunc(func(string, int) bool { return true }))
	assert.Zero(t, m.Cleanup())
	assert.Zero(t, m.Len())
	assert.Zero(t, m.Stats())

	var lf LoaderFunc[string, int]
	_, err = lf.Load(ctx, "k")
	require.ErrorIs(t, err, ErrInvalidConfig)
	var bf BatchWriterFunc[string, int]
	require.ErrorIs(t, bf.WriteBatch(ctx, nil), ErrInvalidConfig)

	// A nil source behind a real cache: the read fails with the error, at once.
	mem := newMem(t, 10)
	rt2, err := NewReadThrough[string, int](mem.AsStore(), lf, AsideOptions{})
	require.NoError(t, err)
	_, err = rt2.Get(ctx, "k")
	require.ErrorIs(t, err, ErrInvalidConfig)
}
