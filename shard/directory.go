package shard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Directory is directory-based sharding: an explicit lookup table from key
// to shard, optionally backed by another placement (such as a [Range] of
// key ranges or a hash) for keys the table does not list. Vitess's lookup
// vindexes and most "tenant → shard" designs are directories.
//
// Pros (the guide's): flexible routing and easy rebalancing — any key can
// be moved by changing one entry, with no hash or range constraint. Cons:
// the table is one more lookup per request and, when it lives in a
// separate service (a [DirectorySource] such as
// [github.com/sysdesign-go/sysdesign/shard/redisshard.Directory]), a
// single point of failure and a network round trip; [CachedDirectory]
// trades staleness for both. Use it for complex routing (large tenants on
// their own shards) and dynamic sharding.
//
// A Directory is immutable (With returns a changed copy) and safe for
// concurrent use.
type Directory struct {
	set      *nodeSet
	entries  map[string]int32
	fallback Placement
	remap    []int32 // fallback index → our index
}

// DirectoryOptions configure [NewDirectory]. The zero value is ready to
// use.
type DirectoryOptions struct {
	// Fallback places keys the table does not list. Its shards must all be
	// in the directory's shard set. Nil means unlisted keys have no shard.
	Fallback Placement
}

// NewDirectory returns a directory over nodes with entries mapping keys to
// shard names. An entry naming a shard outside nodes is an error wrapping
// [ErrUnknownShard].
//
// The table ignores weights: its entries decide where listed keys go. Keys
// it does not list follow the fallback, which honours its own weights. So a
// shard's weight must equal the fallback's weight for that shard, and be 1
// when there is no fallback or the fallback lacks the shard; anything else
// is an error wrapping [ErrInvalidWeight], never a weight silently ignored.
func NewDirectory(nodes []Node, entries map[string]string, opts DirectoryOptions) (*Directory, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	fallbackWeight := map[string]float64{}
	if opts.Fallback != nil {
		for _, n := range opts.Fallback.Nodes() {
			fallbackWeight[n.Name] = n.Weight
		}
	}
	for _, n := range nodes {
		want, inFallback := fallbackWeight[n.Name]
		switch {
		case inFallback && n.Weight != want:
			return nil, fmt.Errorf("%w: shard %q has weight %v in the directory but %v in its fallback placement (the table ignores weights; only the fallback honours them)", ErrInvalidWeight, n.Name, n.Weight, want)
		case !inFallback && n.Weight != 1:
			return nil, fmt.Errorf("%w: directory placement is unweighted for shards outside a fallback (its entries decide their keys), but shard %q has weight %v (want 1)", ErrInvalidWeight, n.Name, n.Weight)
		}
	}
	d := &Directory{set: set, entries: make(map[string]int32, len(entries)), fallback: opts.Fallback}
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		i, ok := set.index[entries[k]]
		if !ok {
			return nil, fmt.Errorf("%w: directory entry %q names shard %q", ErrUnknownShard, k, entries[k])
		}
		d.entries[k] = int32(i)
	}
	if opts.Fallback != nil {
		for _, n := range opts.Fallback.Nodes() {
			i, ok := set.index[n.Name]
			if !ok {
				return nil, fmt.Errorf("%w: the fallback placement's shard %q is not in the directory", ErrUnknownShard, n.Name)
			}
			d.remap = append(d.remap, int32(i))
		}
	}
	return d, nil
}

// Locate returns the index in the nodes given to [NewDirectory] of the
// shard the table (or the fallback) assigns to key, or -1 when neither
// does. It does not allocate.
func (d *Directory) Locate(key string) int {
	if i, ok := d.entries[key]; ok {
		return int(i)
	}
	if d.fallback != nil {
		if j := d.fallback.Locate(key); j >= 0 {
			return int(d.remap[j])
		}
	}
	return -1
}

// Lookup is Locate with an error wrapping [ErrNoShardForKey] when no shard
// owns key; on error the index is -1, never a shard's.
func (d *Directory) Lookup(key string) (int, error) {
	if i := d.Locate(key); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("%w: key %q is not in the directory", ErrNoShardForKey, key)
}

// LookupShard implements [DirectorySource] over the in-memory table.
func (d *Directory) LookupShard(_ context.Context, key string) (string, error) {
	i, err := d.Lookup(key)
	if err != nil {
		return "", err
	}
	return d.set.nodes[i].Name, nil
}

// Nodes returns a copy of the shard set in the order given to
// [NewDirectory].
func (d *Directory) Nodes() []Node { return slices.Clone(d.set.nodes) }

// With returns a copy of the directory with key assigned to shard: moving
// one key is one entry.
func (d *Directory) With(key, shard string) (*Directory, error) {
	i, ok := d.set.index[shard]
	if !ok {
		return nil, fmt.Errorf("%w: directory entry %q names shard %q", ErrUnknownShard, key, shard)
	}
	c := *d
	c.entries = maps.Clone(d.entries)
	c.entries[key] = int32(i)
	return &c, nil
}

// Len returns the number of explicit entries.
func (d *Directory) Len() int { return len(d.entries) }

// DirectorySource is a directory that lives elsewhere (a database table, a
// Redis hash, a lookup service): every call may block and fail. It returns
// the owning shard's name, or an error wrapping [ErrNoShardForKey].
type DirectorySource interface {
	LookupShard(ctx context.Context, key string) (string, error)
}

var _ DirectorySource = (*Directory)(nil)

// DefaultDirectoryCacheSize and DefaultDirectoryCacheTTL are the defaults
// of [CachedDirectoryOptions].
const (
	DefaultDirectoryCacheSize = 10_000
	DefaultDirectoryCacheTTL  = time.Minute
)

// CachedDirectoryOptions configure [NewCachedDirectory]. The zero value is
// ready to use.
type CachedDirectoryOptions struct {
	// Size is the number of keys cached (least recently used are evicted).
	// Zero means [DefaultDirectoryCacheSize]; negative is an error.
	Size int
	// TTL is how long an entry is served without asking the source. Zero
	// means [DefaultDirectoryCacheTTL]; negative is an error.
	TTL time.Duration
	// ServeStale, when true, answers from an expired entry when the source
	// fails, so a directory outage only affects keys never looked up — the
	// usual mitigation of the directory's single point of failure, at the
	// price of routing to a shard the key may have left. Default false.
	ServeStale bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnSourceError, if set, is called on the looking-up goroutine (never
	// under a lock) when the source fails, with whether a stale entry was
	// served instead: the signal that the directory is down.
	OnSourceError func(key string, err error, servedStale bool)
}

// CachedDirectory is a client-side cache in front of a [DirectorySource]:
// the "cached directory" that removes the directory's lookup overhead for
// hot keys. A moved key is routed to its old shard until its entry expires
// or is invalidated, so pair it with a [Migration] (whose double-read finds
// the key either way) or call [CachedDirectory.Invalidate] on every move.
//
// It is safe for concurrent use.
type CachedDirectory struct {
	src   DirectorySource
	set   *nodeSet
	cache *lru.Cache[string, cachedEntry]
	opts  CachedDirectoryOptions

	hits, misses, stale, errors atomic.Uint64
}

type cachedEntry struct {
	shard   int32
	expires time.Time
}

// NewCachedDirectory returns a cache over src whose answers must name
// shards in nodes. The nodes are validated like every shard set (unique
// names, finite weights greater than zero), but the cache does not use
// their weights: the placement behind src decides where keys go, and
// [CachedDirectory.Nodes] returns the weights as given.
func NewCachedDirectory(src DirectorySource, nodes []Node, opts CachedDirectoryOptions) (*CachedDirectory, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: nil directory source", ErrInvalidConfig)
	}
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	if opts.Size < 0 || opts.TTL < 0 {
		return nil, fmt.Errorf("%w: CachedDirectoryOptions Size %d, TTL %v (want ≥ 0; 0 means %d and %v)", ErrInvalidConfig, opts.Size, opts.TTL, DefaultDirectoryCacheSize, DefaultDirectoryCacheTTL)
	}
	if opts.Size == 0 {
		opts.Size = DefaultDirectoryCacheSize
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultDirectoryCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := lru.New[string, cachedEntry](opts.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return &CachedDirectory{src: src, set: set, cache: c, opts: opts}, nil
}

// Lookup returns the index in nodes of key's shard, from the cache when a
// fresh entry exists and from the source otherwise. On error the index is
// -1, never a shard's.
func (c *CachedDirectory) Lookup(ctx context.Context, key string) (int, error) {
	if c == nil || c.src == nil {
		return -1, errNotMade("CachedDirectory", "NewCachedDirectory")
	}
	now := c.opts.Now()
	e, ok := c.cache.Get(key)
	if ok && now.Before(e.expires) {
		c.hits.Add(1)
		return int(e.shard), nil
	}
	c.misses.Add(1)
	name, err := c.src.LookupShard(ctx, key)
	if err != nil {
		stale := ok && c.opts.ServeStale
		if c.opts.OnSourceError != nil {
			c.opts.OnSourceError(key, err, stale)
		}
		if stale {
			c.stale.Add(1)
			return int(e.shard), nil
		}
		c.errors.Add(1)
		return -1, err
	}
	i, known := c.set.index[name]
	if !known {
		c.errors.Add(1)
		return -1, fmt.Errorf("%w: the directory maps key %q to shard %q", ErrUnknownShard, key, name)
	}
	c.cache.Add(key, cachedEntry{shard: int32(i), expires: now.Add(c.opts.TTL)})
	return i, nil
}

// Invalidate drops key's cached entry, as a move of the key must.
func (c *CachedDirectory) Invalidate(key string) { c.cache.Remove(key) }

// Nodes returns a copy of the shard set.
func (c *CachedDirectory) Nodes() []Node { return slices.Clone(c.set.nodes) }

// DirectoryStats is a snapshot of a [CachedDirectory]'s counters.
type DirectoryStats struct {
	Hits, Misses, StaleHits, Errors uint64
	Cached                          int
}

// Stats returns the cache's counters.
func (c *CachedDirectory) Stats() DirectoryStats {
	return DirectoryStats{Hits: c.hits.Load(), Misses: c.misses.Load(), StaleHits: c.stale.Load(), Errors: c.errors.Load(), Cached: c.cache.Len()}
}
