package ratelimit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
)

var redisAlgorithms = []Algorithm{AlgGCRA, AlgTokenBucket, AlgFixedWindow, AlgSlidingWindow}

// redisLimit is long enough that refill during a test is negligible and a
// window boundary (midnight UTC for a day) is unlikely to fall inside it.
func redisLimit(alg Algorithm, n int) Limit {
	if alg == AlgFixedWindow || alg == AlgSlidingWindow {
		return Limit{Events: n, Per: 24 * time.Hour}
	}
	return Limit{Events: n, Per: time.Hour, Burst: n}
}

func newRedis(t *testing.T, c redis.UniversalClient, prefix string, alg Algorithm, opts RedisOptions, limits ...Limit) *Redis {
	t.Helper()
	opts.Prefix = prefix
	r, err := NewRedis(c, alg, opts, limits...)
	require.NoError(t, err)
	return r
}

// Every Redis algorithm admits the quota, then refuses with a retry time,
// keeps its state under the caller's prefix in a hash-tagged key, and
// lets the key expire.
func TestRedis_QuotaThenDeny(t *testing.T) {
	for _, alg := range redisAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			db := redistest.New(t)
			ctx := context.Background()
			lim := redisLimit(alg, 5)
			r := newRedis(t, db.Client, db.Prefix, alg, RedisOptions{}, lim)
			for i := range 5 {
				d, err := r.AllowN(ctx, "alice", 1)
				require.NoError(t, err)
				require.True(t, d.Allowed, "event %d", i)
				assert.Equal(t, 4-i, d.Remaining)
				assert.Equal(t, lim, d.Limit)
			}
			d, err := r.AllowN(ctx, "alice", 1)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			assert.Zero(t, d.Remaining)
			switch alg {
			case AlgGCRA, AlgTokenBucket: // one interval: 12 minutes
				assert.InDelta(t, 12*time.Minute, d.RetryAfter, float64(time.Second))
			default: // the window must pass
				assert.Positive(t, d.RetryAfter)
				assert.LessOrEqual(t, d.RetryAfter, 48*time.Hour)
			}
			d, err = r.AllowN(ctx, "bob", 1)
			require.NoError(t, err)
			assert.True(t, d.Allowed, "another key")

			key := r.Key("alice")
			assert.Equal(t, db.Prefix+"{alice}", key)
			ttl, err := db.Client.PTTL(ctx, key).Result()
			require.NoError(t, err)
			assert.Positive(t, ttl, "the key expires")
			assert.Equal(t, RedisStats{Allowed: 6, Denied: 1}, r.Stats())
			require.NoError(t, r.Reset(ctx, "alice"))
			d, err = r.AllowN(ctx, "alice", 1)
			require.NoError(t, err)
			assert.True(t, d.Allowed, "after Reset")
		})
	}
}

// Four limiter instances, each with its own connection, hammering one key
// concurrently admit the global limit once — not four times.
func TestRedis_GlobalLimitAcrossInstances(t *testing.T) {
	for _, alg := range redisAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			db := redistest.New(t)
			const limit = 100
			var instances []*Redis
			for range 4 {
				instances = append(instances, newRedis(t, db.NewClient(t), db.Prefix, alg, RedisOptions{Timeout: 5 * time.Second}, redisLimit(alg, limit)))
			}
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for i := range 16 {
				inst := instances[i%4]
				wg.Go(func() {
					for range 25 {
						d, err := inst.AllowN(context.Background(), "shared", 1)
						if err == nil && d.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			// 400 attempts: exactly the limit passes (a bucket may refill
			// one more during the run: 100/hour is one per 36s).
			assert.GreaterOrEqual(t, allowed.Load(), int64(limit))
			assert.LessOrEqual(t, allowed.Load(), int64(limit+1))
			var errs uint64
			for _, inst := range instances {
				errs += inst.Stats().Errors
			}
			assert.Zero(t, errs)
		})
	}
}

// Several limits on one key in one script: a request denied by the
// per-second limit consumes nothing from the daily one.
func TestRedis_MultiLimitGCRA(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	perSec := Limit{Events: 2, Per: time.Second, Burst: 2}
	daily := PerDay(3)
	r := newRedis(t, db.Client, db.Prefix, AlgGCRA, RedisOptions{}, perSec, daily)
	allowed := 0
	for range 50 {
		d, err := r.AllowN(ctx, "k", 1)
		require.NoError(t, err)
		if d.Allowed {
			allowed++
		} else {
			assert.Equal(t, perSec, d.Limit, "the per-second limit denies")
		}
	}
	require.Equal(t, 2, allowed)
	d, err := r.AllowN(ctx, "k", 1)
	require.NoError(t, err)
	if !d.Allowed { // still within the same second: wait it out
		time.Sleep(d.RetryAfter)
		d, err = r.AllowN(ctx, "k", 1)
		require.NoError(t, err)
	}
	require.True(t, d.Allowed, "the daily quota still has its third event")
	assert.Equal(t, daily, d.Limit, "the daily limit is now the tightest")
	assert.Zero(t, d.Remaining)
	assert.Equal(t, []Limit{perSec, daily}, r.Limits())
}

// When Redis is cut off, the policy decides, within the timeout, and the
// hook and Stats hear about it; when it is back, limiting resumes.
func TestRedis_FailOpenFailClosed(t *testing.T) {
	for _, policy := range []FailurePolicy{FailOpen, FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			db := redistest.New(t)
			proxy, err := tcpproxy.New(db.Addr)
			require.NoError(t, err)
			defer func() { _ = proxy.Close() }()
			client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
			defer func() { _ = client.Close() }()
			var hookErrs []error
			var mu sync.Mutex
			r := newRedis(t, client, db.Prefix, AlgGCRA, RedisOptions{
				Timeout: 200 * time.Millisecond, OnFailure: policy,
				OnError: func(key string, err error, p FailurePolicy) {
					mu.Lock()
					defer mu.Unlock()
					assert.Equal(t, "k", key)
					assert.Equal(t, policy, p)
					hookErrs = append(hookErrs, err)
				},
			}, Limit{Events: 1, Per: time.Hour, Burst: 1})
			ctx := context.Background()
			d, err := r.AllowN(ctx, "k", 1)
			require.NoError(t, err)
			require.True(t, d.Allowed)

			for _, breakIt := range []func(){proxy.Cut, proxy.Blackhole} {
				breakIt()
				start := time.Now()
				d, err = r.AllowN(ctx, "k", 1)
				// The timeout bounds the call (go-redis's own read timeout
				// would be 3s): a generous ceiling, not a timing test.
				assert.Less(t, time.Since(start), 2*time.Second, "mode %v", proxy.Mode())
				require.NoError(t, err, "the policy absorbs the failure")
				assert.Equal(t, policy == FailOpen, d.Allowed, "mode %v", proxy.Mode())
				if policy == FailClosed {
					assert.Equal(t, time.Second, d.RetryAfter)
				}
				proxy.Restore()
			}
			mu.Lock()
			require.Len(t, hookErrs, 2)
			require.ErrorIs(t, hookErrs[0], ErrBackend)
			mu.Unlock()
			assert.EqualValues(t, 2, r.Stats().Errors)

			// Back to normal: the key is still limited by its real state.
			require.Eventually(t, func() bool {
				d, err := r.AllowN(ctx, "k", 1)
				return err == nil && !d.Allowed && d.RetryAfter > 0 && r.Stats().Errors >= 2
			}, 5*time.Second, 10*time.Millisecond)
		})
	}
}

// A caller's own cancellation is not a Redis failure.
func TestRedis_CallerCancel(t *testing.T) {
	db := redistest.New(t)
	r := newRedis(t, db.Client, db.Prefix, AlgGCRA, RedisOptions{}, PerSecond(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.AllowN(ctx, "k", 1)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, r.Stats().Errors)
}

func TestRedis_BadInput(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer func() { _ = c.Close() }()
	for name, f := range map[string]func() error{
		"nil client": func() error { _, err := NewRedis(nil, AlgGCRA, RedisOptions{}, PerSecond(1)); return err },
		"no limit":   func() error { _, err := NewRedis(c, AlgGCRA, RedisOptions{}); return err },
		"multi non-gcra": func() error {
			_, err := NewRedis(c, AlgFixedWindow, RedisOptions{}, PerSecond(1), PerDay(5))
			return err
		},
		"sliding log":      func() error { _, err := NewRedis(c, AlgSlidingLog, RedisOptions{}, PerSecond(1)); return err },
		"negative timeout": func() error { _, err := NewRedis(c, AlgGCRA, RedisOptions{Timeout: -1}, PerSecond(1)); return err },
		"bad policy":       func() error { _, err := NewRedis(c, AlgGCRA, RedisOptions{OnFailure: 7}, PerSecond(1)); return err },
		"zero rate": func() error {
			_, err := NewRedis(c, AlgGCRA, RedisOptions{}, Limit{Per: time.Second, Burst: 1})
			return err
		},
		"zero window": func() error {
			_, err := NewRedis(c, AlgFixedWindow, RedisOptions{}, Limit{Events: 1})
			return err
		},
		"sub-microsecond window": func() error {
			_, err := NewRedis(c, AlgFixedWindow, RedisOptions{}, Limit{Events: 1, Per: 1500})
			return err
		},
	} {
		err := f()
		require.ErrorIs(t, err, ErrInvalidConfig, name)
		assert.True(t, strings.HasPrefix(err.Error(), "ratelimit: ") || strings.HasPrefix(err.Error(), "limit 0: ratelimit: "), err.Error())
	}
	r, err := NewRedis(c, AlgGCRA, RedisOptions{}, PerSecond(3))
	require.NoError(t, err)
	_, err = r.AllowN(context.Background(), "", 1)
	require.ErrorIs(t, err, ErrEmptyKey)
	_, err = r.AllowN(context.Background(), "k", 4)
	require.ErrorIs(t, err, ErrExceedsLimit)
	_, err = r.AllowN(context.Background(), "k", 0)
	require.ErrorIs(t, err, ErrInvalidN)
	assert.Equal(t, "fail-open", FailOpen.String())
}
