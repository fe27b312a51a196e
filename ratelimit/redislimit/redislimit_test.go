package redislimit_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/ratelimit/redislimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var algorithms = []ratelimit.Algorithm{ratelimit.AlgGCRA, ratelimit.AlgTokenBucket, ratelimit.AlgFixedWindow, ratelimit.AlgSlidingWindow}

// limitFor is long enough that refill during a test is negligible and a
// window boundary (midnight UTC for a day) is unlikely to fall inside it.
func limitFor(alg ratelimit.Algorithm, n int) ratelimit.Limit {
	if alg == ratelimit.AlgFixedWindow || alg == ratelimit.AlgSlidingWindow {
		return ratelimit.Limit{Events: n, Per: 24 * time.Hour}
	}
	return ratelimit.Limit{Events: n, Per: time.Hour, Burst: n}
}

// patient gives each decision time enough on a busy machine: a call
// that the default 100ms timeout cut short would be decided by the
// failure policy, not by Redis.
var patient = redislimit.Options{Timeout: 5 * time.Second}

func newLimiter(t testing.TB, c redis.UniversalClient, prefix string, alg ratelimit.Algorithm, opts redislimit.Options, limits ...ratelimit.Limit) *redislimit.Limiter {
	t.Helper()
	opts.Prefix = prefix
	r, err := redislimit.New(c, alg, opts, limits...)
	require.NoError(t, err)
	return r
}

// Every algorithm admits the quota, then refuses with a retry time, keeps
// its state under the caller's prefix in a hash-tagged key, and lets the
// key expire.
func TestLimiter_QuotaThenDeny(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		for _, alg := range algorithms {
			t.Run(alg.String(), func(t *testing.T) {
				ctx := context.Background()
				prefix := db.Key(alg.String() + ":")
				lim := limitFor(alg, 5)
				r := newLimiter(t, db.Client, prefix, alg, patient, lim)
				first := time.Now()
				for i := range 5 {
					d, err := r.Decide(ctx, "alice", 1)
					require.NoError(t, err)
					require.True(t, d.Allowed, "event %d", i)
					assert.Equal(t, 4-i, d.Remaining)
					assert.Equal(t, lim, d.Limit)
					assertResetAfter(t, alg, d.ResetAfter, i+1, first, time.Now())
				}
				d, err := r.Decide(ctx, "alice", 1)
				require.NoError(t, err)
				require.False(t, d.Allowed)
				assert.Zero(t, d.Remaining)
				assertResetAfter(t, alg, d.ResetAfter, 5, first, time.Now())
				switch alg {
				case ratelimit.AlgGCRA, ratelimit.AlgTokenBucket: // one interval: 12 minutes
					assert.InDelta(t, 12*time.Minute, d.RetryAfter, float64(time.Second))
				default: // the window must pass
					assert.Positive(t, d.RetryAfter)
					assert.LessOrEqual(t, d.RetryAfter, 48*time.Hour)
				}
				d, err = r.Decide(ctx, "bob", 1)
				require.NoError(t, err)
				assert.True(t, d.Allowed, "another key")

				key := r.Key("alice")
				assert.Equal(t, prefix+"{alice}", key)
				ttl, err := db.Client.PTTL(ctx, key).Result()
				require.NoError(t, err)
				assert.Positive(t, ttl, "the key expires")
				assert.Equal(t, redislimit.Stats{Allowed: 6, Denied: 1}, r.Stats())
				require.NoError(t, r.Reset(ctx, "alice"))
				d, err = r.Decide(ctx, "alice", 1)
				require.NoError(t, err)
				assert.True(t, d.Allowed, "after Reset")
			})
		}
	})
}

// assertResetAfter checks the ResetAfter of a decision on a limitFor(alg,
// 5) made by now, with events events spent since first: a bucket has
// refilled nothing of them but the time since first (an event costs 12
// minutes), a fixed window resets at the end of the day (UTC), and the
// sliding counter a day later, once the current window has aged out.
func assertResetAfter(t *testing.T, alg ratelimit.Algorithm, got time.Duration, events int, first, now time.Time) {
	t.Helper()
	const slack = 2 * time.Microsecond // the script counts whole µs, rounding up
	dayEnd := func(t time.Time) time.Time { return t.Truncate(24 * time.Hour).Add(24 * time.Hour) }
	var lo, hi time.Duration
	switch alg {
	case ratelimit.AlgGCRA, ratelimit.AlgTokenBucket:
		hi = time.Duration(events) * 12 * time.Minute
		lo = hi - now.Sub(first)
	case ratelimit.AlgFixedWindow:
		lo, hi = dayEnd(now).Sub(now), dayEnd(first).Sub(first)
	default:
		lo, hi = dayEnd(now).Sub(now)+24*time.Hour, dayEnd(first).Sub(first)+24*time.Hour
	}
	if got < lo-slack || got > hi+slack {
		t.Errorf("%v: ResetAfter %v after %d events, want %v to %v", alg, got, events, lo, hi)
	}
}

// The hash-tag rule: each key's state is one Redis key whose tag is the
// caller's key, so on a cluster many keys spread over the slots, each
// limited on its own; a caller's key with braces of its own still maps to
// one Redis key.
func TestLimiter_ManyKeysAcrossSlots(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		r := newLimiter(t, db.Client, db.Key("rl:"), ratelimit.AlgGCRA, patient, limitFor(ratelimit.AlgGCRA, 2))
		keys := []string{"{tagged}", "a}b", "{", "}{"}
		for i := range 40 {
			keys = append(keys, "user:"+strconv.Itoa(i))
		}
		slots := map[int64]bool{}
		for _, k := range keys {
			for i := range 3 {
				d, err := r.Decide(ctx, k, 1)
				require.NoError(t, err, k)
				assert.Equal(t, i < 2, d.Allowed, "key %q event %d: each key has its own limit", k, i)
			}
			if db.Cluster {
				slot, err := db.Client.ClusterKeySlot(ctx, r.Key(k)).Result()
				require.NoError(t, err)
				slots[slot] = true
			}
		}
		if db.Cluster {
			assert.Greater(t, len(slots), 30, "the keys spread over the cluster's slots")
		}
		assert.Equal(t, redislimit.Stats{Allowed: uint64(2 * len(keys)), Denied: uint64(len(keys))}, r.Stats())
	})
}

// Four limiter instances, each with its own connection, hammering one key
// concurrently admit the global limit once — not four times.
func TestLimiter_GlobalLimitAcrossInstances(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		for _, alg := range algorithms {
			t.Run(alg.String(), func(t *testing.T) {
				const limit = 100
				var instances []*redislimit.Limiter
				for range 4 {
					instances = append(instances, newLimiter(t, db.NewClient(t), db.Key(alg.String()+":"), alg, redislimit.Options{Timeout: 5 * time.Second}, limitFor(alg, limit)))
				}
				var allowed atomic.Int64
				var wg sync.WaitGroup
				for i := range 16 {
					inst := instances[i%4]
					wg.Go(func() {
						for range 25 {
							d, err := inst.Decide(context.Background(), "shared", 1)
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
	})
}

// Several limits on one key in one script: a request denied by the
// per-second limit consumes nothing from the daily one.
func TestLimiter_MultiLimitGCRA(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		perSec := ratelimit.Limit{Events: 2, Per: time.Second, Burst: 2}
		daily := ratelimit.PerDay(3)
		r := newLimiter(t, db.Client, db.Prefix, ratelimit.AlgGCRA, patient, perSec, daily)
		allowed := 0
		for range 50 {
			d, err := r.Decide(ctx, "k", 1)
			require.NoError(t, err)
			if d.Allowed {
				allowed++
			} else {
				assert.Equal(t, perSec, d.Limit, "the per-second limit denies")
			}
		}
		require.Equal(t, 2, allowed)
		// The per-second limit admits another event within a second by
		// Redis's clock; each denial meanwhile costs the daily quota
		// nothing.
		var d ratelimit.Decision
		require.Eventually(t, func() bool {
			var err error
			d, err = r.Decide(ctx, "k", 1)
			return err == nil && d.Allowed
		}, 5*time.Second, 10*time.Millisecond, "the daily quota still has its third event")
		assert.Equal(t, daily, d.Limit, "the daily limit is now the tightest")
		assert.Zero(t, d.Remaining)
		assert.Equal(t, []ratelimit.Limit{perSec, daily}, r.Limits())
	})
}

// When Redis is cut off, the policy decides, within the timeout, and the
// hook and Stats hear about it; when it is back, limiting resumes. (A
// proxy stands in front of one node, so this runs on the single node.)
func TestLimiter_FailOpenFailClosed(t *testing.T) {
	for _, policy := range []redislimit.FailurePolicy{redislimit.FailOpen, redislimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			db := redistest.New(t)
			proxy, err := tcpproxy.New(db.Addr)
			require.NoError(t, err)
			defer func() { _ = proxy.Close() }()
			client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
			defer func() { _ = client.Close() }()
			var hookErrs []error
			var mu sync.Mutex
			r := newLimiter(t, client, db.Prefix, ratelimit.AlgGCRA, redislimit.Options{
				Timeout: 200 * time.Millisecond, OnFailure: policy,
				OnError: func(key string, err error, p redislimit.FailurePolicy) {
					mu.Lock()
					defer mu.Unlock()
					assert.Equal(t, "k", key)
					assert.Equal(t, policy, p)
					hookErrs = append(hookErrs, err)
				},
			}, ratelimit.Limit{Events: 1, Per: time.Hour, Burst: 1})
			ctx := context.Background()
			d, err := r.Decide(ctx, "k", 1)
			require.NoError(t, err)
			require.True(t, d.Allowed)

			for _, breakIt := range []func(){proxy.Cut, proxy.Blackhole} {
				breakIt()
				start := time.Now()
				d, err = r.Decide(ctx, "k", 1)
				// The timeout bounds the call (go-redis's own read timeout
				// would be 3s): a generous ceiling, not a timing test.
				assert.Less(t, time.Since(start), 2*time.Second, "mode %v", proxy.Mode())
				require.NoError(t, err, "the policy absorbs the failure")
				assert.Equal(t, policy == redislimit.FailOpen, d.Allowed, "mode %v", proxy.Mode())
				if policy == redislimit.FailClosed {
					assert.Equal(t, time.Second, d.RetryAfter)
				}
				proxy.Restore()
			}
			mu.Lock()
			require.Len(t, hookErrs, 2)
			require.ErrorIs(t, hookErrs[0], ratelimit.ErrBackend)
			mu.Unlock()
			assert.EqualValues(t, 2, r.Stats().Errors)

			// Back to normal: the key is still limited by its real state.
			require.Eventually(t, func() bool {
				d, err := r.Decide(ctx, "k", 1)
				return err == nil && !d.Allowed && d.RetryAfter > 0 && r.Stats().Errors >= 2
			}, 5*time.Second, 10*time.Millisecond)
		})
	}
}

// The zero Options decide by Redis, within the default timeout: a key
// whose only event is spent is denied by its state in Redis (a failure
// policy of fail-open would allow it). A busy machine may stretch a round
// trip past the 100ms default now and then, hence the retries.
func TestLimiter_DefaultOptionsDecideByRedis(t *testing.T) {
	db := redistest.New(t)
	r, err := redislimit.New(db.Client, ratelimit.AlgGCRA, redislimit.Options{Prefix: db.Prefix}, ratelimit.Limit{Events: 1, Per: time.Hour, Burst: 1})
	require.NoError(t, err)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		d, err := r.Decide(ctx, "k", 1)
		return err == nil && !d.Allowed && d.RetryAfter > 59*time.Minute
	}, 5*time.Second, 10*time.Millisecond, "a denial by Redis's state of the key")
}

// A caller's own cancellation is not a Redis failure.
func TestLimiter_CallerCancel(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer func() { _ = c.Close() }()
	r := newLimiter(t, c, "p:", ratelimit.AlgGCRA, redislimit.Options{}, ratelimit.PerSecond(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Decide(ctx, "k", 1)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, r.Stats().Errors)
}

func TestNew_BadInput(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer func() { _ = c.Close() }()
	var nilClient *redis.Client
	gcra := ratelimit.AlgGCRA
	for name, f := range map[string]func() error{
		"nil client": func() error {
			_, err := redislimit.New(nil, gcra, redislimit.Options{}, ratelimit.PerSecond(1))
			return err
		},
		"typed nil client": func() error {
			_, err := redislimit.New(nilClient, gcra, redislimit.Options{}, ratelimit.PerSecond(1))
			return err
		},
		"no limit": func() error { _, err := redislimit.New(c, gcra, redislimit.Options{}); return err },
		"multi non-gcra": func() error {
			_, err := redislimit.New(c, ratelimit.AlgFixedWindow, redislimit.Options{}, ratelimit.PerSecond(1), ratelimit.PerDay(5))
			return err
		},
		"sliding log": func() error {
			_, err := redislimit.New(c, ratelimit.AlgSlidingLog, redislimit.Options{}, ratelimit.PerSecond(1))
			return err
		},
		"negative timeout": func() error {
			_, err := redislimit.New(c, gcra, redislimit.Options{Timeout: -1}, ratelimit.PerSecond(1))
			return err
		},
		"negative retry": func() error {
			_, err := redislimit.New(c, gcra, redislimit.Options{FailClosedRetryAfter: -1}, ratelimit.PerSecond(1))
			return err
		},
		"bad policy": func() error {
			_, err := redislimit.New(c, gcra, redislimit.Options{OnFailure: 7}, ratelimit.PerSecond(1))
			return err
		},
		"zero rate": func() error {
			_, err := redislimit.New(c, gcra, redislimit.Options{}, ratelimit.Limit{Per: time.Second, Burst: 1})
			return err
		},
		"zero burst": func() error {
			_, err := redislimit.New(c, ratelimit.AlgTokenBucket, redislimit.Options{}, ratelimit.Limit{Events: 1, Per: time.Second})
			return err
		},
		"zero window": func() error {
			_, err := redislimit.New(c, ratelimit.AlgFixedWindow, redislimit.Options{}, ratelimit.Limit{Events: 1})
			return err
		},
		"sub-microsecond window": func() error {
			_, err := redislimit.New(c, ratelimit.AlgFixedWindow, redislimit.Options{}, ratelimit.Limit{Events: 1, Per: 1500})
			return err
		},
	} {
		err := f()
		require.ErrorIs(t, err, ratelimit.ErrInvalidConfig, name)
		assert.True(t, strings.HasPrefix(err.Error(), "ratelimit: ") || strings.HasPrefix(err.Error(), "limit 0: ratelimit: "), err.Error())
	}
	r, err := redislimit.New(c, gcra, redislimit.Options{}, ratelimit.PerSecond(3))
	require.NoError(t, err)
	_, err = r.Decide(context.Background(), "", 1)
	require.ErrorIs(t, err, ratelimit.ErrEmptyKey)
	_, err = r.Decide(context.Background(), "k", 4)
	require.ErrorIs(t, err, ratelimit.ErrExceedsLimit)
	assert.ErrorContains(t, err, "n=4")
	_, err = r.Decide(context.Background(), "k", 0)
	require.ErrorIs(t, err, ratelimit.ErrInvalidN)
	assert.Equal(t, "fail-open", redislimit.FailOpen.String())
	assert.Equal(t, "fail-closed", redislimit.FailClosed.String())
}

// A Limiter its constructor did not make fails clearly.
func TestZeroLimiterFailsClearly(t *testing.T) {
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Decide":     func() error { var r redislimit.Limiter; _, err := r.Decide(ctx, "k", 1); return err },
		"Reset":      func() error { var r redislimit.Limiter; return r.Reset(ctx, "k") },
		"nil Decide": func() error { var r *redislimit.Limiter; _, err := r.Decide(ctx, "k", 1); return err },
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call() })
			require.ErrorIs(t, err, ratelimit.ErrInvalidConfig)
			assert.ErrorContains(t, err, "not made by")
		})
	}
}

// BenchmarkLimiter_Decide measures distributed decisions against the local
// Redis with 1, 8 and 64 concurrent clients, one round trip each, and
// reports decisions per second.
func BenchmarkLimiter_Decide(b *testing.B) {
	db := redistest.New(b)
	for _, alg := range algorithms {
		r := newLimiter(b, db.Client, db.Prefix+alg.String()+":", alg, redislimit.Options{Timeout: 5 * time.Second}, ratelimit.PerSecond(1_000_000))
		for _, clients := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("algo=%v/clients=%d", alg, clients), func(b *testing.B) {
				b.ReportAllocs()
				ctx := context.Background()
				var wg sync.WaitGroup
				work := make(chan struct{}, clients)
				start := time.Now()
				for c := range clients {
					key := "k" + strconv.Itoa(c%8)
					wg.Go(func() {
						for range work {
							if _, err := r.Decide(ctx, key, 1); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for b.Loop() {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
			})
		}
	}
}
