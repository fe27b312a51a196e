package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout bounds each Redis call of [RedisStore],
// [RedisDirectory] and [RedisCheckpoint] when their Timeout option is
// zero.
const DefaultRedisTimeout = time.Second

// RedisOptions configure the Redis-backed types. The zero value is ready
// to use.
type RedisOptions struct {
	// Timeout bounds every Redis call on top of the caller's context. Zero
	// means [DefaultRedisTimeout]; negative is an error.
	Timeout time.Duration
}

func (o RedisOptions) validate(client redis.UniversalClient, prefix string) (RedisOptions, error) {
	if client == nil {
		return o, fmt.Errorf("%w: nil Redis client", ErrInvalidConfig)
	}
	if prefix == "" {
		return o, fmt.Errorf("%w: empty Redis key prefix (the server may be shared; give each shard its own prefix)", ErrInvalidConfig)
	}
	if _, cluster := client.(*redis.ClusterClient); cluster && !hasHashTag(prefix) {
		return o, fmt.Errorf("%w: Redis key prefix %q has no {hash tag}, so a Cluster would spread its keys over slots", ErrInvalidConfig, prefix)
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("%w: RedisOptions.Timeout is %v (want ≥ 0; 0 means %v)", ErrInvalidConfig, o.Timeout, DefaultRedisTimeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultRedisTimeout
	}
	return o, nil
}

func hasHashTag(s string) bool {
	i := strings.IndexByte(s, '{')
	return i >= 0 && strings.IndexByte(s[i+1:], '}') > 0
}

// RedisStore is a [Store] on a Redis server: one shard under one key
// prefix, so many shards (and other users) share a server, a Sentinel
// group or a Cluster. Values live in the hash prefix+"data" and the sorted
// key index in the sorted set prefix+"index" (all scores 0, ordered by
// bytes, so [RedisStore.Scan] is ZRANGE BYLEX). A write updates both in
// one MULTI/EXEC transaction. On Redis Cluster the prefix must carry a
// hash tag ("orders:{s1}:") so both keys share a slot; each shard then
// lives on the node that owns its tag's slot.
//
// A RedisStore is safe for concurrent use.
type RedisStore struct {
	client      redis.UniversalClient
	data, index string
	opts        RedisOptions
}

// NewRedisStore returns a store for one shard under prefix.
func NewRedisStore(client redis.UniversalClient, prefix string, opts RedisOptions) (*RedisStore, error) {
	opts, err := opts.validate(client, prefix)
	if err != nil {
		return nil, err
	}
	return &RedisStore{client: client, data: prefix + "data", index: prefix + "index", opts: opts}, nil
}

// Get implements [Store].
func (s *RedisStore) Get(ctx context.Context, key string) ([]byte, error) {
	if s.client == nil {
		return nil, errNotMade("RedisStore", "NewRedisStore")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	v, err := s.client.HGet(ctx, s.data, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return v, err
}

// Put implements [Store].
func (s *RedisStore) Put(ctx context.Context, key string, value []byte) error {
	if s.client == nil {
		return errNotMade("RedisStore", "NewRedisStore")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.data, key, value)
		p.ZAdd(ctx, s.index, redis.Z{Member: key})
		return nil
	})
	return err
}

// Delete implements [Store].
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	if s.client == nil {
		return errNotMade("RedisStore", "NewRedisStore")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.data, key)
		p.ZRem(ctx, s.index, key)
		return nil
	})
	return err
}

// Scan implements [Store]: ZRANGE BYLEX over the index, then HMGET. A key
// deleted between the two is left out.
func (s *RedisStore) Scan(ctx context.Context, start, end string, limit int) ([]KV, error) {
	if s.client == nil {
		return nil, errNotMade("RedisStore", "NewRedisStore")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	by := &redis.ZRangeBy{Min: "[" + start, Max: "+"}
	if end != "" {
		by.Max = "(" + end
	}
	if limit > 0 {
		by.Count = int64(limit)
	}
	keys, err := s.client.ZRangeByLex(ctx, s.index, by).Result()
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	vals, err := s.client.HMGet(ctx, s.data, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]KV, 0, len(keys))
	for i, k := range keys {
		if v, ok := vals[i].(string); ok {
			out = append(out, KV{Key: k, Value: []byte(v)})
		}
	}
	return out, nil
}

// RedisDirectory is a [DirectorySource] kept in a Redis hash (the key
// prefix+"directory", field = key, value = shard name): a shared,
// centrally updated routing table. It is the directory's single point of
// failure made concrete; put a [CachedDirectory] in front of it.
//
// It is safe for concurrent use.
type RedisDirectory struct {
	client redis.UniversalClient
	key    string
	opts   RedisOptions
}

var _ DirectorySource = (*RedisDirectory)(nil)

// NewRedisDirectory returns a directory stored under prefix.
func NewRedisDirectory(client redis.UniversalClient, prefix string, opts RedisOptions) (*RedisDirectory, error) {
	opts, err := opts.validate(client, prefix)
	if err != nil {
		return nil, err
	}
	return &RedisDirectory{client: client, key: prefix + "directory", opts: opts}, nil
}

// LookupShard implements [DirectorySource].
func (d *RedisDirectory) LookupShard(ctx context.Context, key string) (string, error) {
	if d.client == nil {
		return "", errNotMade("RedisDirectory", "NewRedisDirectory")
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	s, err := d.client.HGet(ctx, d.key, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: key %q is not in the directory", ErrNoShardForKey, key)
	}
	return s, err
}

// Assign maps key to shard (moving one key is one write).
func (d *RedisDirectory) Assign(ctx context.Context, key, shard string) error {
	if d.client == nil {
		return errNotMade("RedisDirectory", "NewRedisDirectory")
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	return d.client.HSet(ctx, d.key, key, shard).Err()
}

// RedisCheckpoint is a [Checkpoint] in a Redis hash (prefix+"checkpoint"),
// so a migration resumes after a process crash. It is safe for concurrent
// use.
type RedisCheckpoint struct {
	client redis.UniversalClient
	key    string
	opts   RedisOptions
}

var _ Checkpoint = (*RedisCheckpoint)(nil)

// NewRedisCheckpoint returns a checkpoint stored under prefix.
func NewRedisCheckpoint(client redis.UniversalClient, prefix string, opts RedisOptions) (*RedisCheckpoint, error) {
	opts, err := opts.validate(client, prefix)
	if err != nil {
		return nil, err
	}
	return &RedisCheckpoint{client: client, key: prefix + "checkpoint", opts: opts}, nil
}

// Load implements [Checkpoint].
func (c *RedisCheckpoint) Load(ctx context.Context, shard string) (string, bool, error) {
	if c.client == nil {
		return "", false, errNotMade("RedisCheckpoint", "NewRedisCheckpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	v, err := c.client.HGet(ctx, c.key, shard).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

// Save implements [Checkpoint].
func (c *RedisCheckpoint) Save(ctx context.Context, shard, key string) error {
	if c.client == nil {
		return errNotMade("RedisCheckpoint", "NewRedisCheckpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	return c.client.HSet(ctx, c.key, shard, key).Err()
}
