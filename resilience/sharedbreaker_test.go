package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedBreakerFailsOpenWhenStoreFails(t *testing.T) {
	b := must(NewSharedBreaker[int](brokenStore{}, SharedBreakerOptions{Name: "x"}))
	for range 3 {
		v, err := b.Execute(context.Background(), ok)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	}
	st := b.Stats()
	assert.Equal(t, uint64(6), st.StoreErrors)
	assert.Equal(t, StateClosed, b.State(context.Background()))
}

type brokenStore struct{}

var errStore = errors.New("store down")

func (brokenStore) Load(context.Context, string, time.Time, BreakerRules) (SharedState, error) {
	return SharedState{}, errStore
}
func (brokenStore) Acquire(context.Context, string, time.Time, BreakerRules) (SharedState, bool, error) {
	return SharedState{}, false, errStore
}
func (brokenStore) Record(context.Context, string, uint64, Outcome, time.Time, BreakerRules) (SharedState, error) {
	return SharedState{}, errStore
}

func TestSharedBreakerBadInput(t *testing.T) {
	store := NewMemoryBreakerStore()
	for _, o := range []SharedBreakerOptions{
		{}, {Name: "a{b}"}, {Name: "x", Rules: BreakerRules{Window: -1}}, {Name: "x", Rules: BreakerRules{Buckets: -1}},
		{Name: "x", Rules: BreakerRules{Window: time.Millisecond, Buckets: 10}}, {Name: "x", Rules: BreakerRules{MinRequests: -1}},
		{Name: "x", Rules: BreakerRules{FailureRate: 2}}, {Name: "x", Rules: BreakerRules{Timeout: -1}}, {Name: "x", Rules: BreakerRules{HalfOpenRequests: -1}},
		{Name: "x", CacheTTL: -1}, {Name: "x", SlowCallThreshold: -1},
	} {
		_, err := NewSharedBreaker[int](store, o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
	_, err := NewSharedBreaker[int](nil, SharedBreakerOptions{Name: "x"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
