package redisbreaker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

// breakerScript applies one shared-breaker operation atomically. KEYS[1] is
// the state hash (s = state, g = generation, u = open-until / probe lease
// in ms, p = probes taken, k = probe successes), KEYS[2] the per-bucket
// counters (r<bucket>, f<bucket>); both carry the breaker's hash tag.
// ARGV: mode (load | acquire | record), now ms, timeout ms, half-open
// probes; for record also generation, outcome (0 ok, 1 fail, 2 excluded),
// bucket ms, buckets, minimum requests, failure rate. It returns {state,
// generation, until ms, admitted}. The rules are the same as
// sharedbreaker.MemoryStore's.
var breakerScript = redis.NewScript(`
local s = redis.call('HMGET', KEYS[1], 's', 'g', 'u', 'p', 'k')
local state = tonumber(s[1]) or 0
local gen = tonumber(s[2]) or 0
local u = tonumber(s[3]) or 0
local p = tonumber(s[4]) or 0
local now = tonumber(ARGV[2])
local timeout = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local function set(st, untilms)
  state = st; gen = gen + 1; u = untilms; p = 0
  redis.call('HSET', KEYS[1], 's', state, 'g', gen, 'u', u, 'p', 0, 'k', 0)
  redis.call('DEL', KEYS[2])
end
if state == 2 and now >= u then set(1, now) end
local mode = ARGV[1]
if mode == 'load' then return {state, gen, u, 0} end
if mode == 'acquire' then
  if state == 0 then return {state, gen, u, 1} end
  if state == 2 then return {state, gen, u, 0} end
  if p >= n and now >= u then p = 0 end
  if p >= n then return {state, gen, u, 0} end
  p = p + 1
  u = now + timeout
  redis.call('HSET', KEYS[1], 'p', p, 'u', u)
  return {state, gen, u, 1}
end
if tonumber(ARGV[5]) ~= gen then return {state, gen, u, 0} end
local o = ARGV[6]
if state == 0 then
  if o ~= '2' then
    local bms = tonumber(ARGV[7])
    local nb = tonumber(ARGV[8])
    local b = math.floor(now / bms)
    redis.call('HINCRBY', KEYS[2], 'r' .. b, 1)
    redis.call('HDEL', KEYS[2], 'r' .. (b - nb), 'f' .. (b - nb))
    redis.call('PEXPIRE', KEYS[2], bms * nb * 2)
    if o == '1' then
      redis.call('HINCRBY', KEYS[2], 'f' .. b, 1)
      local fields = {}
      for i = b - nb + 1, b do
        fields[#fields + 1] = 'r' .. i
        fields[#fields + 1] = 'f' .. i
      end
      local vals = redis.call('HMGET', KEYS[2], unpack(fields))
      local req, fail = 0, 0
      for i = 1, #vals, 2 do
        req = req + (tonumber(vals[i]) or 0)
        fail = fail + (tonumber(vals[i + 1]) or 0)
      end
      if req >= tonumber(ARGV[9]) and fail >= tonumber(ARGV[10]) * req then set(2, now + timeout) end
    end
  end
elseif state == 1 then
  if o == '1' then
    set(2, now + timeout)
  elseif o == '2' then
    if p > 0 then redis.call('HINCRBY', KEYS[1], 'p', -1) end
  else
    local k = redis.call('HINCRBY', KEYS[1], 'k', 1)
    if k >= n then set(0, 0) end
  end
end
return {state, gen, u, 0}
`)

// Store is a [sharedbreaker.Store] on Redis: [sharedbreaker.Breaker]
// instances in any number of processes share breaker state through it.
// Each operation is one Lua script run by SHA on two keys with the
// breaker's hash tag (<prefix>{<name>}:state and <prefix>{<name>}:counts),
// so both keys share a slot and it works on Redis Cluster. Times are the
// callers' clocks in milliseconds: keep the instances' clocks in sync to
// within a fraction of the bucket length.
//
// Create the client with ContextTimeoutEnabled: true: go-redis otherwise
// bounds a call by its own ReadTimeout (3 s by default) rather than by the
// context, and a breaker whose store hangs should fail open within
// [sharedbreaker.Options].StoreTimeout, not seconds later.
//
// A Store is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
}

var _ sharedbreaker.Store = (*Store)(nil)

// NewStore returns a store keeping its keys under prefix. A prefix with a
// brace is refused with an error wrapping [resilience.ErrInvalidConfig]:
// it would change the keys' hash tag, so a Redis Cluster could put a
// breaker's two keys on different slots, where one script cannot reach
// both.
func NewStore(client redis.UniversalClient, prefix string) (*Store, error) {
	if c, isClient := client.(*redis.Client); client == nil || isClient && c == nil {
		return nil, fmt.Errorf("%w: redisbreaker.NewStore needs a client", resilience.ErrInvalidConfig)
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("%w: Redis key prefix %q contains a brace, which would replace the breaker name as the keys' {hash tag}, so a Cluster could put a breaker's state and counts on different slots", resilience.ErrInvalidConfig, prefix)
	}
	return &Store{client: client, prefix: prefix}, nil
}

// keys returns the breaker's two keys, or an error for a name that would
// not make them share a slot ([sharedbreaker.Breaker] refuses such names
// too).
func (s *Store) keys(name string) ([]string, error) {
	if name == "" || strings.ContainsAny(name, "{}") {
		return nil, fmt.Errorf("%w: breaker name %q must be non-empty and contain no braces: it is the {hash tag} that keeps the breaker's two keys in one Redis Cluster slot", resilience.ErrInvalidConfig, name)
	}
	tag := s.prefix + "{" + name + "}:"
	return []string{tag + "state", tag + "counts"}, nil
}

func (s *Store) run(ctx context.Context, name string, args ...any) (sharedbreaker.Snapshot, bool, error) {
	if s == nil || s.client == nil {
		return sharedbreaker.Snapshot{}, false, fmt.Errorf("%w: redisbreaker.Store not made by redisbreaker.NewStore", resilience.ErrInvalidConfig)
	}
	keys, err := s.keys(name)
	if err != nil {
		return sharedbreaker.Snapshot{}, false, err
	}
	res, err := breakerScript.Run(ctx, s.client, keys, args...).Int64Slice()
	if err != nil {
		return sharedbreaker.Snapshot{}, false, fmt.Errorf("redisbreaker: breaker %q: %w", name, err)
	}
	if len(res) != 4 {
		return sharedbreaker.Snapshot{}, false, fmt.Errorf("redisbreaker: breaker %q: unexpected reply %v", name, res)
	}
	st := sharedbreaker.Snapshot{State: resilience.State(res[0]), Generation: uint64(res[1])}
	if res[2] > 0 {
		st.OpenUntil = time.UnixMilli(res[2])
	}
	return st, res[3] == 1, nil
}

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

// Load implements [sharedbreaker.Store].
func (s *Store) Load(ctx context.Context, name string, now time.Time, r sharedbreaker.Rules) (sharedbreaker.Snapshot, error) {
	st, _, err := s.run(ctx, name, "load", now.UnixMilli(), ms(r.Timeout), r.HalfOpenRequests)
	return st, err
}

// Acquire implements [sharedbreaker.Store].
func (s *Store) Acquire(ctx context.Context, name string, now time.Time, r sharedbreaker.Rules) (sharedbreaker.Snapshot, bool, error) {
	return s.run(ctx, name, "acquire", now.UnixMilli(), ms(r.Timeout), r.HalfOpenRequests)
}

// Record implements [sharedbreaker.Store]. Rules whose bucket
// (Window / Buckets) is under a millisecond get an error wrapping
// [resilience.ErrInvalidConfig].
func (s *Store) Record(ctx context.Context, name string, gen uint64, o sharedbreaker.Outcome, now time.Time, r sharedbreaker.Rules) (sharedbreaker.Snapshot, error) {
	if r.Buckets < 1 || r.Window/time.Duration(r.Buckets) < time.Millisecond {
		return sharedbreaker.Snapshot{}, fmt.Errorf("%w: breaker %q: rules with Window %v in %d buckets give no whole-millisecond bucket", resilience.ErrInvalidConfig, name, r.Window, r.Buckets)
	}
	st, _, err := s.run(ctx, name, "record", now.UnixMilli(), ms(r.Timeout), r.HalfOpenRequests,
		strconv.FormatUint(gen, 10), int(o), ms(r.Window/time.Duration(r.Buckets)), r.Buckets, r.MinRequests, strconv.FormatFloat(r.FailureRate, 'g', -1, 64))
	return st, err
}
