package resilience

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A result that arrives after the timeout is still the result when the
// call ignored its context; an error before the timeout is the call's own;
// a timeout must be positive, and an unmade Timeout runs nothing.
func TestTimeoutEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to, err := NewTimeout[int](TimeoutOptions{Timeout: 100 * time.Millisecond})
		require.NoError(t, err)
		v, err := to.Execute(t.Context(), func(context.Context) (int, error) { time.Sleep(200 * time.Millisecond); return 5, nil })
		require.NoError(t, err)
		assert.Equal(t, 5, v)
		_, err = to.Execute(t.Context(), fail)
		assert.Same(t, errBoom, err)
		assert.Equal(t, TimeoutStats{Calls: 2}, to.Stats())
	})
	_, err := NewTimeout[int](TimeoutOptions{Timeout: -time.Second})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	to, err := NewTimeout[int](TimeoutOptions{Timeout: time.Nanosecond})
	require.NoError(t, err)
	_, err = to.Execute(t.Context(), nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	var zero Timeout[int]
	_, err = zero.Execute(t.Context(), ok)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
