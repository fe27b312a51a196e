package redislimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// FailurePolicy says what a [Limiter] decides when Redis fails or does not
// answer within the timeout.
type FailurePolicy int

const (
	// FailOpen allows the request: an outage of the limiter does not become
	// an outage of the API. Abuse goes unchecked while Redis is down.
	FailOpen FailurePolicy = iota
	// FailClosed denies the request: nothing passes unmetered, and the API
	// is down while Redis is. Right for expensive or dangerous operations
	// (sending SMS, payments).
	FailClosed
)

// String returns "fail-open" or "fail-closed".
func (p FailurePolicy) String() string {
	if p == FailClosed {
		return "fail-closed"
	}
	return "fail-open"
}

// Options configure a [Limiter]. The zero value is ready to use.
type Options struct {
	// Prefix goes before every key: the key for "alice" is
	// Prefix+"{alice}", the braces making it a Redis Cluster hash tag, so
	// the keys spread over the cluster's slots. Default "ratelimit:".
	Prefix string
	// Timeout bounds each decision's round trip, on top of the caller's
	// context. Default 100ms; it must not be negative. go-redis applies a
	// context deadline to the socket only when the client was created with
	// ContextTimeoutEnabled: true; without it a blackholed Redis holds a
	// call for the client's ReadTimeout (3s by default) instead.
	Timeout time.Duration
	// OnFailure is the decision when Redis fails or times out. Default
	// FailOpen.
	OnFailure FailurePolicy
	// FailClosedRetryAfter is the RetryAfter of a fail-closed denial.
	// Default 1s.
	FailClosedRetryAfter time.Duration
	// OnError, if set, is called with every Redis failure, after the
	// decision is made and outside any lock.
	OnError func(key string, err error, policy FailurePolicy)
}

// Stats is a snapshot of a [Limiter]'s counters.
type Stats struct {
	Allowed uint64 // events allowed, including by FailOpen
	Denied  uint64 // events denied, including by FailClosed
	Errors  uint64 // decisions Redis failed to make (error or timeout)
}

// Limiter is a distributed limiter: every process that shares a Redis and
// a Prefix shares one limit per key, so N instances behind a load balancer
// admit the limit once, not N times.
//
// Each decision is one round trip: one Lua script, loaded once and run by
// EVALSHA, that reads the key's state, decides and writes it back
// atomically, using the Redis server's TIME so the instances' clocks do not
// matter. Each script touches one key, Prefix+"{key}", so it works on a
// single node, Sentinel and Redis Cluster alike (any
// [redis.UniversalClient]). Keys expire once their limit has fully
// recovered, so idle keys cost nothing.
//
// Supported algorithms: [ratelimit.AlgGCRA] (as go-redis/redis_rate; it
// alone accepts several limits, enforced together as a [ratelimit.Multi]
// does), [ratelimit.AlgTokenBucket], [ratelimit.AlgFixedWindow] and
// [ratelimit.AlgSlidingWindow] (the weighted two-window counter).
//
// Guide (Security Considerations → Rate Limiting; API Design → Rate
// Limiting): the limit a client sees must not depend on which instance
// served it. The cost is a network round trip per request and a
// dependency on Redis, governed by OnFailure.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	client   redis.UniversalClient
	alg      ratelimit.Algorithm
	limits   []ratelimit.Limit
	capacity int
	script   *redis.Script
	params   []any // per-limit script arguments after n
	opts     Options

	allowed, denied, errs atomic.Uint64
}

var _ ratelimit.KeyedLimiter = (*Limiter)(nil)

// New returns a distributed limiter enforcing limits (at least one;
// several only with [ratelimit.AlgGCRA]) on client. Bad input gets an
// error wrapping [ratelimit.ErrInvalidConfig].
func New(client redis.UniversalClient, alg ratelimit.Algorithm, opts Options, limits ...ratelimit.Limit) (*Limiter, error) {
	switch c, isClient := client.(*redis.Client); {
	case client == nil || isClient && c == nil:
		return nil, fmt.Errorf("%w: nil Redis client", ratelimit.ErrInvalidConfig)
	case len(limits) == 0:
		return nil, fmt.Errorf("%w: no limit given", ratelimit.ErrInvalidConfig)
	case len(limits) > 1 && alg != ratelimit.AlgGCRA:
		return nil, fmt.Errorf("%w: several limits on one key need %v, not %v", ratelimit.ErrInvalidConfig, ratelimit.AlgGCRA, alg)
	case opts.Timeout < 0:
		return nil, fmt.Errorf("%w: Timeout must not be negative, got %v", ratelimit.ErrInvalidConfig, opts.Timeout)
	case opts.FailClosedRetryAfter < 0:
		return nil, fmt.Errorf("%w: FailClosedRetryAfter must not be negative, got %v", ratelimit.ErrInvalidConfig, opts.FailClosedRetryAfter)
	case opts.OnFailure != FailOpen && opts.OnFailure != FailClosed:
		return nil, fmt.Errorf("%w: unknown failure policy %d", ratelimit.ErrInvalidConfig, int(opts.OnFailure))
	}
	src, ok := scripts[alg]
	if !ok {
		return nil, fmt.Errorf("%w: %v has no Redis implementation (use gcra, token-bucket, fixed-window or sliding-window)", ratelimit.ErrInvalidConfig, alg)
	}
	if opts.Prefix == "" {
		opts.Prefix = "ratelimit:"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.FailClosedRetryAfter == 0 {
		opts.FailClosedRetryAfter = time.Second
	}
	r := &Limiter{client: client, alg: alg, limits: limits, script: redis.NewScript(src), opts: opts, capacity: int(^uint(0) >> 1)}
	for i, l := range limits {
		// The in-memory limiter of the same algorithm accepts exactly the
		// limits the script can enforce.
		if _, err := ratelimit.New(alg, l); err != nil {
			return nil, fmt.Errorf("limit %d: %w", i, err)
		}
		if alg != ratelimit.AlgGCRA && int64(l.Per)%int64(time.Microsecond) != 0 {
			return nil, fmt.Errorf("%w: Redis windows are whole microseconds, got %v", ratelimit.ErrInvalidConfig, l.Per)
		}
		r.capacity = min(r.capacity, l.Capacity(alg))
		us := float64(l.Per) / float64(time.Microsecond)
		switch alg {
		case ratelimit.AlgGCRA: // interval and capacity, µs
			iv := us / float64(l.Events)
			r.params = append(r.params, iv, iv*float64(l.Burst))
		case ratelimit.AlgTokenBucket: // tokens per µs, burst
			r.params = append(r.params, float64(l.Events)/us, l.Burst)
		default: // window µs, quota
			r.params = append(r.params, int64(us), l.Events)
		}
	}
	return r, nil
}

// Limits returns the limits enforced.
func (r *Limiter) Limits() []ratelimit.Limit { return r.limits }

// Key returns the Redis key that holds key's state.
func (r *Limiter) Key(key string) string { return r.opts.Prefix + "{" + key + "}" }

func errNotMade() error {
	return fmt.Errorf("%w: redislimit.Limiter not made by redislimit.New: the zero value has no limit", ratelimit.ErrInvalidConfig)
}

// Decide reports whether n events may happen now for key, consuming them
// if so; see [ratelimit.KeyedLimiter]. When Redis fails, the decision
// follows OnFailure and the error goes to OnError and Stats, not to the
// caller; the returned error is only for bad input (wrapping
// [ratelimit.ErrEmptyKey], [ratelimit.ErrInvalidN] or
// [ratelimit.ErrExceedsLimit]) or a cancelled ctx.
func (r *Limiter) Decide(ctx context.Context, key string, n int) (ratelimit.Decision, error) {
	if r == nil || r.client == nil {
		return ratelimit.Decision{}, errNotMade()
	}
	if key == "" {
		return ratelimit.Decision{}, fmt.Errorf("%w: keyed limiters need a non-empty key", ratelimit.ErrEmptyKey)
	}
	if n < 1 {
		return ratelimit.Decision{Limit: r.limits[0]}, fmt.Errorf("%w: n must be at least 1, got %d", ratelimit.ErrInvalidN, n)
	}
	if n > r.capacity {
		return ratelimit.Decision{Limit: r.limits[0]}, fmt.Errorf("%w: n=%d is more than the %d the limit can ever grant at once", ratelimit.ErrExceedsLimit, n, r.capacity)
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{Limit: r.limits[0]}, err
	}
	d, err := r.run(ctx, key, n)
	if err != nil {
		if ctx.Err() != nil { // the caller gave up: not Redis's fault
			return ratelimit.Decision{Limit: r.limits[0]}, ctx.Err()
		}
		r.errs.Add(1)
		d = ratelimit.Decision{Allowed: r.opts.OnFailure == FailOpen, Limit: r.limits[0]}
		if !d.Allowed {
			d.RetryAfter = r.opts.FailClosedRetryAfter
		}
		if r.opts.OnError != nil {
			r.opts.OnError(key, fmt.Errorf("%w: %w", ratelimit.ErrBackend, err), r.opts.OnFailure)
		}
	}
	if d.Allowed {
		r.allowed.Add(uint64(n))
	} else {
		r.denied.Add(uint64(n))
	}
	return d, nil
}

func (r *Limiter) run(ctx context.Context, key string, n int) (ratelimit.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	args := make([]any, 0, 2+len(r.params))
	args = append(args, n, len(r.limits))
	args = append(args, r.params...)
	res, err := r.script.Run(ctx, r.client, []string{r.Key(key)}, args...).Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, err
	}
	// The scripts always reply with five numbers and a limit index in
	// range: this guards against a script at odds with this code, which
	// no test can bring about (hence > for >= goes unnoticed).
	if len(res) != 5 || res[4] < 0 || res[4] >= int64(len(r.limits)) {
		return ratelimit.Decision{}, errors.New("redislimit: unexpected reply from the Redis script: " + fmt.Sprint(res))
	}
	return ratelimit.Decision{
		Allowed:    res[0] == 1,
		Limit:      r.limits[res[4]],
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		ResetAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}

// Stats returns a snapshot of the counters.
func (r *Limiter) Stats() Stats {
	return Stats{Allowed: r.allowed.Load(), Denied: r.denied.Load(), Errors: r.errs.Load()}
}

// Reset deletes key's state, as if it had never been seen.
func (r *Limiter) Reset(ctx context.Context, key string) error {
	if r == nil || r.client == nil {
		return errNotMade()
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := r.client.Del(ctx, r.Key(key)).Err(); err != nil {
		return fmt.Errorf("%w: reset %q: %w", ratelimit.ErrBackend, key, err)
	}
	return nil
}

// The scripts share one calling convention: KEYS[1] is the key; ARGV is
// n, the number of limits, then two numbers per limit. Each returns
// {allowed, remaining, retry_after_us, reset_after_us, limit_index}. Time
// is the server's, in microseconds (exact in a Lua double until 2255).
var scripts = map[ratelimit.Algorithm]string{
	ratelimit.AlgGCRA:          gcraScript,
	ratelimit.AlgTokenBucket:   tokenBucketScript,
	ratelimit.AlgFixedWindow:   fixedWindowScript,
	ratelimit.AlgSlidingWindow: slidingWindowScript,
}

const scriptNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
`

// gcraScript keeps one TAT per limit in a hash (field = limit index) and
// charges all limits only when all conform.
const gcraScript = scriptNow + `
local k = tonumber(ARGV[2])
local fields = {}
for i = 1, k do fields[i] = tostring(i) end
local tats = redis.call('HMGET', KEYS[1], unpack(fields))
local worst, worst_delay, tight, tight_rem, tight_reset = 1, -1, 1, math.huge, -1
local news, reset = {}, 0
for i = 1, k do
  local iv = tonumber(ARGV[1 + 2 * i])
  local cap = tonumber(ARGV[2 + 2 * i])
  local base = math.max(tonumber(tats[i]) or now, now)
  local new = base + n * iv
  local delay = new - cap - now
  if delay > worst_delay then worst, worst_delay = i, delay end
  local rem = math.floor(math.max(now + cap - new, 0) / iv)
  -- the tightest limit: fewest remaining, then the longest to recover
  if rem < tight_rem or (rem == tight_rem and new - now > tight_reset) then
    tight, tight_rem, tight_reset = i, rem, new - now
  end
  news[2 * i - 1] = fields[i]
  news[2 * i] = string.format('%.17g', new)
  reset = math.max(reset, new - now)
end
if worst_delay > 0 then
  local iv = tonumber(ARGV[1 + 2 * worst])
  local cap = tonumber(ARGV[2 + 2 * worst])
  local base = math.max(tonumber(tats[worst]) or now, now)
  return {0, math.floor(math.max(now + cap - base, 0) / iv), math.ceil(worst_delay), math.ceil(base - now), worst - 1}
end
redis.call('HSET', KEYS[1], unpack(news))
redis.call('PEXPIRE', KEYS[1], math.ceil(reset / 1000) + 1)
return {1, tight_rem, 0, math.ceil(tight_reset), tight - 1}
`

// tokenBucketScript stores the classic pair: tokens and the time of the
// last update.
const tokenBucketScript = scriptNow + `
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(h[1]) or burst
local ts = tonumber(h[2]) or now
tokens = math.min(burst, tokens + math.max(now - ts, 0) * rate)
if tokens < n then
  return {0, math.floor(tokens), math.ceil((n - tokens) / rate), math.ceil((burst - tokens) / rate), 0}
end
tokens = tokens - n
local reset = math.ceil((burst - tokens) / rate)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(reset / 1000) + 1)
return {1, math.floor(tokens), 0, reset, 0}
`

// fixedWindowScript counts events per epoch-aligned window.
const fixedWindowScript = scriptNow + `
local size = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local w = math.floor(now / size)
local h = redis.call('HMGET', KEYS[1], 'w', 'c')
local c = 0
if tonumber(h[1]) == w then c = tonumber(h[2]) end
local reset = (w + 1) * size - now
if c + n > quota then
  return {0, math.max(quota - c, 0), reset, reset, 0}
end
redis.call('HSET', KEYS[1], 'w', string.format('%.17g', w), 'c', c + n)
redis.call('PEXPIRE', KEYS[1], math.ceil(reset / 1000) + 1)
return {1, quota - c - n, 0, reset, 0}
`

// slidingWindowScript keeps the current and previous window counts and
// weighs the previous one by how much of it the sliding window covers.
const slidingWindowScript = scriptNow + `
local size = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local w = math.floor(now / size)
local start = w * size
local h = redis.call('HMGET', KEYS[1], 'w', 'p', 'c')
local hw, p, c = tonumber(h[1]), 0, 0
if hw == w then p, c = tonumber(h[2]), tonumber(h[3])
elseif hw == w - 1 then p = tonumber(h[3]) end
local covered = (start + size - now) / size
local est = p * covered + c
if est + n > quota then
  local retry
  if c + n > quota then
    -- next window: prev = c
    retry = start + size - now
    local room = quota - n
    if c > room then retry = retry + size - math.floor(room * size / c) end
  else
    retry = start + size - math.floor((quota - c - n) * size / p) - now
  end
  local reset = start + size - now
  if c > 0 then reset = reset + size end
  return {0, math.floor(math.max(quota - est, 0)), math.max(math.ceil(retry), 1), reset, 0}
end
c = c + n
redis.call('HSET', KEYS[1], 'w', string.format('%.17g', w), 'p', p, 'c', c)
redis.call('PEXPIRE', KEYS[1], math.ceil((start + 2 * size - now) / 1000) + 1)
return {1, math.floor(math.max(quota - est - n, 0)), 0, start + 2 * size - now, 0}
`
