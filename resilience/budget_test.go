package resilience

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A budget allows Ratio extra attempts per first attempt in its window,
// plus MinPerWindow, and forgets what left the window.
func TestBudgetAllowanceAndWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0
	b, err := NewBudget(BudgetOptions{Ratio: 0.1, MinPerWindow: 2, Window: 10 * time.Second, Buckets: 10,
		Now: func() time.Time { return now }})
	require.NoError(t, err)
	assert.True(t, b.TryExtraAt(t0))
	assert.True(t, b.TryExtraAt(t0), "2 extras with no request: the floor")
	assert.False(t, b.TryExtraAt(t0))
	for range 10 {
		b.RecordRequestAt(t0.Add(time.Second))
	}
	assert.True(t, b.TryExtraAt(t0.Add(time.Second)), "0.1 × 10 + 2 = 3")
	assert.False(t, b.TryExtraAt(t0.Add(time.Second)))
	now = t0.Add(9 * time.Second)
	assert.Equal(t, BudgetStats{Requests: 10, Extras: 3, Denied: 2}, b.Stats())
	now = t0.Add(10 * time.Second)
	assert.Equal(t, BudgetStats{Requests: 10, Extras: 1, Denied: 2}, b.Stats(), "the two extras at 0 s left the window")
	now = t0.Add(11 * time.Second)
	assert.Equal(t, BudgetStats{Denied: 2}, b.Stats())
	assert.True(t, b.TryExtra())
	assert.True(t, b.TryExtra())
	assert.False(t, b.TryExtra())

	// The default floor is 10 extras a window; a negative one is none.
	def, err := NewBudget(BudgetOptions{Ratio: 1, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	for range 10 {
		require.True(t, def.TryExtra())
	}
	assert.False(t, def.TryExtra())
	def.RecordRequest()
	assert.True(t, def.TryExtra(), "one request allows one more at ratio 1")
	none, err := NewBudget(BudgetOptions{Ratio: 0.5, MinPerWindow: -1})
	require.NoError(t, err)
	assert.False(t, none.TryExtra())

	var zero Budget
	zero.RecordRequest()
	assert.False(t, zero.TryExtra())
	assert.Equal(t, BudgetStats{}, zero.Stats())

	for _, o := range []BudgetOptions{{Ratio: 0.1, Window: -time.Second}, {Ratio: 0.1, Buckets: -1},
		{Ratio: 0.1, Window: 5 * time.Nanosecond, Buckets: 6}} {
		_, err := NewBudget(o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
	for _, o := range []BudgetOptions{{Ratio: 0.1, Window: 5 * time.Nanosecond, Buckets: 5}, {Ratio: 0.1, Buckets: 1}} {
		_, err = NewBudget(o)
		assert.NoError(t, err, "%+v", o)
	}
}
