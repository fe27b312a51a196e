package redisshard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/internal/hashtag"
	"github.com/sysdesign-go/sysdesign/shard"
)

// DefaultTimeout bounds each Redis call of [Store], [Directory] and
// [Checkpoint] when [Options.Timeout] is zero.
const DefaultTimeout = time.Second

// Options configure the types of this package. The zero value is ready to
// use.
type Options struct {
	// Timeout bounds every Redis call on top of the caller's context. Zero
	// means [DefaultTimeout]; negative is an error.
	Timeout time.Duration
}

func (o Options) validate(client redis.UniversalClient, prefix string) (Options, error) {
	if c, isClient := client.(*redis.Client); client == nil || isClient && c == nil {
		return o, fmt.Errorf("%w: nil Redis client", shard.ErrInvalidConfig)
	}
	if prefix == "" {
		return o, fmt.Errorf("%w: empty Redis key prefix (the server may be shared; give each shard its own prefix)", shard.ErrInvalidConfig)
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("%w: Options.Timeout is %v (want ≥ 0; 0 means %v)", shard.ErrInvalidConfig, o.Timeout, DefaultTimeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o, nil
}

func errNotMade(what, constructor string) error {
	return fmt.Errorf("%w: redisshard.%s not made by %s", shard.ErrInvalidConfig, what, constructor)
}

// Store is a [shard.Store] on Redis: one shard under one key prefix, so
// many shards (and other users) share a server, a Sentinel group or a
// Cluster. Values live in the hash prefix+"data" and the sorted key index
// in the sorted set prefix+"index" (all scores 0, ordered by bytes, so
// [Store.Scan] is ZRANGE BYLEX). A write updates both in one MULTI/EXEC
// transaction, so on Redis Cluster both keys must share a slot: there the
// prefix must carry a hash tag ("orders:{s1}:"), and each shard then lives
// on the node that owns its tag's slot.
//
// A Store is safe for concurrent use.
type Store struct {
	client      redis.UniversalClient
	data, index string
	opts        Options
}

var _ shard.Store = (*Store)(nil)

// NewStore returns a store for one shard under prefix. On a
// *redis.ClusterClient a prefix without a non-empty {hash tag} is refused
// with an error wrapping [shard.ErrInvalidConfig]: the data hash and the
// index would land on different slots, where MULTI/EXEC cannot span them.
func NewStore(client redis.UniversalClient, prefix string, opts Options) (*Store, error) {
	opts, err := opts.validate(client, prefix)
	if err != nil {
		return nil, err
	}
	if _, cluster := client.(*redis.ClusterClient); cluster && !hashtag.Has(prefix) {
		return nil, fmt.Errorf("%w: Redis key prefix %q has no {hash tag}, so a Cluster would put the store's data hash and index on different slots, which one MULTI/EXEC cannot span (use e.g. %q)",
			shard.ErrInvalidConfig, prefix, "{"+prefix+"}")
	}
	return &Store{client: client, data: prefix + "data", index: prefix + "index", opts: opts}, nil
}

// Get implements [shard.Store].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if s == nil || s.client == nil {
		return nil, errNotMade("Store", "NewStore")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	v, err := s.client.HGet(ctx, s.data, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, shard.ErrNotFound
	}
	return v, err
}

// Put implements [shard.Store].
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if s == nil || s.client == nil {
		return errNotMade("Store", "NewStore")
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

// Delete implements [shard.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if s == nil || s.client == nil {
		return errNotMade("Store", "NewStore")
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

// Scan implements [shard.Store]: ZRANGE BYLEX over the index, then HMGET.
// A key deleted between the two is left out.
func (s *Store) Scan(ctx context.Context, start, end string, limit int) ([]shard.KV, error) {
	if s == nil || s.client == nil {
		return nil, errNotMade("Store", "NewStore")
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
	out := make([]shard.KV, 0, len(keys))
	for i, k := range keys {
		if v, ok := vals[i].(string); ok {
			out = append(out, shard.KV{Key: k, Value: []byte(v)})
		}
	}
	return out, nil
}

// Directory is a [shard.DirectorySource] kept in a Redis hash (the key
// prefix+"directory", field = key, value = shard name): a shared,
// centrally updated routing table. It is the directory's single point of
// failure made concrete; put a [shard.CachedDirectory] in front of it.
// Every call touches that one key, so on Redis Cluster any prefix works.
//
// It is safe for concurrent use.
type Directory struct {
	client redis.UniversalClient
	key    string
	opts   Options
}

var _ shard.DirectorySource = (*Directory)(nil)

// NewDirectory returns a directory stored under prefix.
func NewDirectory(client redis.UniversalClient, prefix string, opts Options) (*Directory, error) {
	opts, err := opts.validate(client, prefix)
	if err != nil {
		return nil, err
	}
	return &Directory{client: client, key: prefix + "directory", opts: opts}, nil
}

// LookupShard implements [shard.DirectorySource].
func (d *Directory) LookupShard(ctx context.Context, key string) (string, error) {
	if d == nil || d.client == nil {
		return "", errNotMade("Directory", "NewDirectory")
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	s, err := d.client.HGet(ctx, d.key, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: key %q is not in the directory", shard.ErrNoShardForKey, key)
	}
	return s, err
}

// Assign maps key to shard (moving one key is one write).
func (d *Directory) Assign(ctx context.Context, key, shardName string) error {
	if d == nil || d.client == nil {
		return errNotMade("Directory", "NewDirectory")
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	return d.client.HSet(ctx, d.key, key, shardName).Err()
}

// Checkpoint is a [shard.Checkpoint] in a Redis hash (prefix+"checkpoint"),
// so a [shard.Migration] resumes after a process crash. Every call touches
// that one key, so on Redis Cluster any prefix works. It is safe for
// concurrent use.
type Checkpoint struct {
	client redis.UniversalClient
	key    string
	opts   Options
}

var _ shard.Checkpoint = (*Checkpoint)(nil)

// NewCheckpoint returns a checkpoint stored under prefix.
func NewCheckpoint(client redis.UniversalClient, prefix string, opts Options) (*Checkpoint, error) {
	opts, err := opts.validate(client, prefix)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{client: client, key: prefix + "checkpoint", opts: opts}, nil
}

// Load implements [shard.Checkpoint].
func (c *Checkpoint) Load(ctx context.Context, shardName string) (string, bool, error) {
	if c == nil || c.client == nil {
		return "", false, errNotMade("Checkpoint", "NewCheckpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	v, err := c.client.HGet(ctx, c.key, shardName).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

// Save implements [shard.Checkpoint].
func (c *Checkpoint) Save(ctx context.Context, shardName, key string) error {
	if c == nil || c.client == nil {
		return errNotMade("Checkpoint", "NewCheckpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	return c.client.HSet(ctx, c.key, shardName, key).Err()
}
