package lb

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFailoverTriesAnotherBackend(t *testing.T) {
	b, err := New(RoundRobin{}, backends(3), Options{})
	require.NoError(t, err)
	var retried []string
	f, err := NewFailover(b, FailoverOptions{OnRetry: func(addr string, attempt int, err error) { retried = append(retried, addr) }})
	require.NoError(t, err)
	dead := map[string]bool{"10.0.0.1:80": true, "10.0.0.2:80": true}
	for range 10 {
		var tried []string
		err := f.Do(context.Background(), Request{}, func(_ context.Context, be Backend) error {
			tried = append(tried, be.Addr)
			if dead[be.Addr] {
				return errBackend
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, "10.0.0.3:80", tried[len(tried)-1])
		seen := map[string]bool{}
		for _, a := range tried {
			assert.False(t, seen[a], "never the same backend twice: %v", tried)
			seen[a] = true
		}
	}
	s := f.Stats()
	assert.Equal(t, uint64(10), s.Requests)
	assert.Equal(t, int(s.Retries), len(retried))
	assert.Zero(t, s.Exhausted)
	var failures uint64
	for _, bs := range b.Stats().Backends {
		failures += bs.Failures
		assert.Zero(t, bs.InFlight)
	}
	assert.Equal(t, s.Retries, failures, "every failed attempt reached the balancer")
}

func TestFailoverBounds(t *testing.T) {
	b, err := New(RoundRobin{}, backends(5), Options{})
	require.NoError(t, err)
	retries := 0
	f, err := NewFailover(b, FailoverOptions{Attempts: 2, OnRetry: func(string, int, error) { retries++ }})
	require.NoError(t, err)
	calls := 0
	err = f.Do(context.Background(), Request{}, func(context.Context, Backend) error { calls++; return errBackend })
	assert.ErrorIs(t, err, errBackend)
	assert.Contains(t, err.Error(), "all 2 attempts failed")
	assert.Equal(t, 2, calls)
	assert.Equal(t, 1, retries, "a retry after the first attempt, none after the last")
	assert.Equal(t, uint64(1), f.Stats().Retries)

	// Out of backends before out of attempts.
	f, err = NewFailover(b, FailoverOptions{Attempts: 9})
	require.NoError(t, err)
	calls = 0
	err = f.Do(context.Background(), Request{}, func(context.Context, Backend) error { calls++; return errBackend })
	assert.ErrorIs(t, err, errBackend)
	assert.ErrorIs(t, err, ErrNoHealthyBackend)
	assert.Contains(t, err.Error(), "5 attempts failed, no backend left")
	assert.Equal(t, 5, calls)

	// Not retryable: one attempt.
	errFatal := errors.New("bad request")
	f, err = NewFailover(b, FailoverOptions{Retryable: func(err error) bool { return !errors.Is(err, errFatal) }})
	require.NoError(t, err)
	calls = 0
	err = f.Do(context.Background(), Request{}, func(context.Context, Backend) error { calls++; return errFatal })
	assert.ErrorIs(t, err, errFatal)
	assert.Equal(t, 1, calls)

	// The only backend may be retried.
	one, err := New(RoundRobin{}, backends(1), Options{})
	require.NoError(t, err)
	f, err = NewFailover(one, FailoverOptions{})
	require.NoError(t, err)
	calls = 0
	err = f.Do(context.Background(), Request{}, func(context.Context, Backend) error {
		calls++
		if calls < 3 {
			return errBackend
		}
		return nil
	})
	assert.NoError(t, err)
	assert.Equal(t, 3, calls)

	_, err = NewFailover(b, FailoverOptions{Attempts: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewFailover(nil, FailoverOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// A caller's cancellation is not retried and not blamed on the backend.
func TestFailoverStopsOnCancel(t *testing.T) {
	b, err := New(RoundRobin{}, backends(3), Options{})
	require.NoError(t, err)
	f, err := NewFailover(b, FailoverOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = f.Do(ctx, Request{}, func(ctx context.Context, _ Backend) error { calls++; cancel(); return ctx.Err() })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, calls)
	for _, bs := range b.Stats().Backends {
		assert.Zero(t, bs.Failures)
	}
}
