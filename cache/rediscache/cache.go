package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
)

// Errors returned by this package, testable with errors.Is. Invalid
// configuration and use of a value its constructor did not make return
// errors wrapping [cache.ErrInvalidConfig].
var (
	// ErrCodec wraps a failure to encode or decode a value for Redis.
	ErrCodec = errors.New("rediscache: codec error")
	// ErrL2Open is returned by [MultiLevel] writes and deletions that
	// updated L1 only because the L2 circuit breaker was open.
	ErrL2Open = errors.New("rediscache: L2 breaker open")
)

// errZero is what a method of a zero value (one not made by its
// constructor) returns, naming the constructor.
func errZero(typ, ctor string) error {
	return fmt.Errorf("%w: zero rediscache.%s; create it with rediscache.%s", cache.ErrInvalidConfig, typ, ctor)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{cache.ErrInvalidConfig}, args...)...)
}

// hitRatio returns hits/(hits+misses), or 0 with no lookups.
func hitRatio(hits, misses uint64) float64 {
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// Codec turns values into bytes for Redis and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default [Codec], encoding/json.
type JSON struct{}

// Marshal calls json.Marshal.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal calls json.Unmarshal.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Options configures a [Cache]. The zero value stores JSON without
// expiry, with no key prefix, and bounds every call by 100 ms.
type Options struct {
	// Prefix is put in front of every key, e.g. "app:users:". Default "".
	Prefix string
	// Codec encodes values. Default nil: [JSON].
	Codec Codec
	// DefaultTTL is the lifetime of values saved with a TTL of 0. Default
	// 0: no expiry.
	DefaultTTL time.Duration
	// Timeout bounds each Redis call (a pipeline counts as one), on top of
	// the caller's context. Default 0: 100 ms.
	Timeout time.Duration
	// OnError is called with every failed Redis call or codec error,
	// outside any lock. Default nil.
	OnError func(err error)
}

// Cache is a distributed cache (the guide's L2) on a Redis server,
// Sentinel group or Cluster through go-redis's UniversalClient. Values are
// encoded with a [Codec]; batches go through one pipeline (on a Cluster,
// one per master, sent in parallel). Keys are strings, put under
// [Options.Prefix]. Every command touches one key, so on a Cluster the
// keys may lie in any slots and the prefix needs no hash tag.
//
// Cache is safe for concurrent use. Create it with [New]. A zero Cache is
// not usable: its methods return an error wrapping
// [cache.ErrInvalidConfig] at once.
type Cache[V any] struct {
	client  redis.UniversalClient
	opts    Options
	codec   Codec
	timeout time.Duration
	stats   struct{ hits, misses, errors atomic.Uint64 }
}

// errZeroCache is what a zero Cache's methods return.
var errZeroCache = errZero("Cache", "New")

// getWithTTL reads a value and its remaining lifetime in one round trip,
// atomically.
var getWithTTL = redis.NewScript(`return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`)

// New returns a cache on client.
func New[V any](client redis.UniversalClient, opts Options) (*Cache[V], error) {
	if client == nil {
		return nil, invalid("nil Redis client")
	}
	if opts.DefaultTTL < 0 || opts.Timeout < 0 {
		return nil, invalid("negative DefaultTTL %v or Timeout %v", opts.DefaultTTL, opts.Timeout)
	}
	r := &Cache[V]{client: client, opts: opts, codec: opts.Codec, timeout: opts.Timeout}
	if r.codec == nil {
		r.codec = JSON{}
	}
	if r.timeout == 0 {
		r.timeout = 100 * time.Millisecond
	}
	return r, nil
}

// Key returns the Redis key that holds key.
func (r *Cache[V]) Key(key string) string { return r.opts.Prefix + key }

func (r *Cache[V]) fail(err error) error {
	r.stats.errors.Add(1)
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
	return err
}

func (r *Cache[V]) decode(key string, data []byte) (V, error) {
	var v V
	if err := r.codec.Unmarshal(data, &v); err != nil {
		return v, r.fail(fmt.Errorf("%w: decoding key %q: %w", ErrCodec, key, err))
	}
	return v, nil
}

func (r *Cache[V]) encode(key string, v V) ([]byte, error) {
	b, err := r.codec.Marshal(v)
	if err != nil {
		return nil, r.fail(fmt.Errorf("%w: encoding key %q: %w", ErrCodec, key, err))
	}
	return b, nil
}

// Get returns key's value and its remaining TTL (0 for none), in one round
// trip; ok is false when Redis does not have it.
func (r *Cache[V]) Get(ctx context.Context, key string) (V, time.Duration, bool, error) {
	var zero V
	if r.client == nil {
		return zero, 0, false, errZeroCache
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := getWithTTL.Run(ctx, r.client, []string{r.Key(key)}).Slice()
	if err != nil {
		return zero, 0, false, r.fail(fmt.Errorf("rediscache: get of %q: %w", key, err))
	}
	if len(res) != 2 || res[0] == nil {
		r.stats.misses.Add(1)
		return zero, 0, false, nil
	}
	s, _ := res[0].(string)
	v, err := r.decode(key, []byte(s))
	if err != nil {
		return zero, 0, false, err
	}
	r.stats.hits.Add(1)
	var ttl time.Duration
	if ms, _ := res[1].(int64); ms > 0 { // ms == 0 is a TTL of 0 either way
		ttl = time.Duration(ms) * time.Millisecond
	}
	return v, ttl, true, nil
}

func (r *Cache[V]) ttl(ttl time.Duration) (time.Duration, error) {
	if ttl < 0 {
		return 0, invalid("negative TTL %v", ttl)
	}
	if ttl == 0 {
		ttl = r.opts.DefaultTTL
	}
	if ttl > 0 && ttl < time.Millisecond { // exactly 1 ms stays 1 ms either way
		ttl = time.Millisecond // Redis's resolution; never 0, which would mean "keep forever"
	}
	return ttl, nil
}

// Set stores value under key for ttl (0: the default TTL).
func (r *Cache[V]) Set(ctx context.Context, key string, value V, ttl time.Duration) error {
	if r.client == nil {
		return errZeroCache
	}
	ttl, err := r.ttl(ttl)
	if err != nil {
		return err
	}
	b, err := r.encode(key, value)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Set(ctx, r.Key(key), b, ttl).Err(); err != nil {
		return r.fail(fmt.Errorf("rediscache: set of %q: %w", key, err))
	}
	return nil
}

// Delete removes key; removing an absent key is not an error.
func (r *Cache[V]) Delete(ctx context.Context, key string) error {
	return r.DeleteMany(ctx, []string{key})
}

// DeleteMany removes keys, in one pipeline.
func (r *Cache[V]) DeleteMany(ctx context.Context, keys []string) error {
	if r.client == nil {
		return errZeroCache
	}
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, r.Key(k))
		}
		return nil
	})
	if err != nil {
		return r.fail(fmt.Errorf("rediscache: delete of %d keys: %w", len(keys), err))
	}
	return nil
}

// GetMany returns the values of keys that Redis has, in one pipeline.
func (r *Cache[V]) GetMany(ctx context.Context, keys []string) (map[string]V, error) {
	if r.client == nil {
		return nil, errZeroCache
	}
	out := make(map[string]V, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, r.Key(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.fail(fmt.Errorf("rediscache: get of %d keys: %w", len(keys), err))
	}
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			r.stats.misses.Add(1)
			continue
		}
		if err != nil {
			return nil, r.fail(fmt.Errorf("rediscache: get of %q: %w", keys[i], err))
		}
		v, err := r.decode(keys[i], b)
		if err != nil {
			return nil, err
		}
		r.stats.hits.Add(1)
		out[keys[i]] = v
	}
	return out, nil
}

// SetMany stores every value of items for ttl (0: the default TTL), in one
// pipeline. If any value fails to encode, nothing is written.
func (r *Cache[V]) SetMany(ctx context.Context, items map[string]V, ttl time.Duration) error {
	if r.client == nil {
		return errZeroCache
	}
	ttl, err := r.ttl(ttl)
	if err != nil {
		return err
	}
	enc := make(map[string][]byte, len(items))
	for k, v := range items {
		if enc[k], err = r.encode(k, v); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, b := range enc {
			p.Set(ctx, r.Key(k), b, ttl)
		}
		return nil
	})
	if err != nil {
		return r.fail(fmt.Errorf("rediscache: set of %d keys: %w", len(items), err))
	}
	return nil
}

// scanBatch is the COUNT hint of each SCAN in [Cache.DeletePrefix]: keys
// examined, and at most about that many deleted, per round trip.
const scanBatch = 500

// DeletePrefix removes every key that starts with prefix (after the
// store's own prefix) and returns how many it removed: invalidation of a
// group of keys ("user:42:") in L2. It walks the keyspace with SCAN MATCH
// — never KEYS, which blocks the server — and deletes each page of matches
// with UNLINK in one pipeline, so memory is reclaimed off Redis's main
// thread and a Cluster node never sees a multi-key command across slots.
// Glob characters in prefix (* ? [ ] \) match only themselves. On a
// Cluster client it walks every master, on a Ring every shard. Its context bounds the whole walk;
// each round trip is bounded by the store's timeout. A key written while
// the walk runs may survive it, as with any SCAN.
//
// An empty prefix on a store without [Options.Prefix] would delete
// every key of the database; that is refused with [cache.ErrInvalidConfig].
func (r *Cache[V]) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if r.client == nil {
		return 0, errZeroCache
	}
	if r.opts.Prefix+prefix == "" {
		return 0, invalid("refusing to delete by an empty prefix on a store without Prefix: it would delete every key in the database")
	}
	pattern := globEscape(r.opts.Prefix+prefix) + "*"
	var n atomic.Int64
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			cctx, cancel := context.WithTimeout(ctx, r.timeout)
			keys, next, err := c.Scan(cctx, cursor, pattern, scanBatch).Result()
			if err == nil && len(keys) > 0 { // an empty pipeline sends nothing: the length test only saves the call
				var cmds []redis.Cmder
				cmds, err = c.Pipelined(cctx, func(p redis.Pipeliner) error {
					for _, k := range keys {
						p.Unlink(cctx, k)
					}
					return nil
				})
				for _, cmd := range cmds {
					// A key SCAN returned twice, or one that expired meanwhile,
					// counts 0.
					n.Add(cmd.(*redis.IntCmd).Val())
				}
			}
			cancel()
			if err != nil {
				return err
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	default:
		err = scan(ctx, r.client)
	}
	if err != nil {
		return int(n.Load()), r.fail(fmt.Errorf("rediscache: delete of prefix %q (%d keys deleted before the error): %w", prefix, n.Load(), err))
	}
	return int(n.Load()), nil
}

// globEscape returns s with the characters Redis's glob patterns treat
// specially escaped, so that the pattern matches s literally.
func globEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '*', '?', '[', ']':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Stats is a snapshot of a [Cache]'s counters.
type Stats struct {
	Hits, Misses uint64
	Errors       uint64 // failed calls and codec errors
}

// HitRatio returns Hits / (Hits + Misses), 0 before any lookup.
func (s Stats) HitRatio() float64 { return hitRatio(s.Hits, s.Misses) }

// Stats returns the store's counters.
func (r *Cache[V]) Stats() Stats {
	return Stats{Hits: r.stats.hits.Load(), Misses: r.stats.misses.Load(), Errors: r.stats.errors.Load()}
}

var _ cache.Store[string, int] = (*Cache[int])(nil)
