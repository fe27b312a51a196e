package service

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// urlCache is the cache of short code → [Record]: an L1 [cache.Memory] in
// this process, over an L2 [rediscache.Cache] when Redis is configured.
//
// A redirect served from L1 does no I/O at all: the L1 probe is a
// lock-free map read, and nothing else on that path (click counting,
// metrics) leaves the process. Redis is touched only on an L1 miss (one
// L2 read and, if that misses too, one L2 write after the store read), on
// creation (one L2 write that warms the new code) and on delete.
//
// Only a delete invalidates other instances' L1: in process through the
// [Bus], across processes through [rediscache.MultiLevel]'s pub/sub channel.
// Filling the cache after a miss and warming a new code publish nothing:
// neither changes what a code means. A fill that told the other instances
// to drop the code would make each of them miss it again — every store
// read would cost every other instance an L2 round trip and, while L2
// reads time out under load, another store read and another round of
// invalidations.
//
// Every L2 call runs through a circuit breaker and a timeout
// ([resilience.NewPipeline]): when Redis fails, the breaker opens after a
// few failures and L2 is skipped entirely — lookups cost an L1 probe and,
// on a miss, a store read, never a Redis timeout — until a probe after
// BreakerOpen finds Redis back. MultiLevel.Get hides L2 errors (it
// reports them to a hook and returns a miss), which would keep the breaker
// from seeing them, so lookups and fills use the two levels here and only
// deletes go through MultiLevel.
//
// It implements [cache.Store], so a [cache.Aside] runs over it. Safe for
// concurrent use.
type urlCache struct {
	l1    *cache.Memory[string, Record]
	l2    *rediscache.Cache[Record]      // nil without Redis
	ml    *rediscache.MultiLevel[Record] // nil without Redis
	bus   *Bus                           // nil: no in-process peers
	l1TTL time.Duration                  // cap on L1 lifetimes
	pipe  *resilience.Pipeline[l2Result] // breaker → timeout
	cb    *resilience.CircuitBreaker[l2Result]

	l1Hits, l2Hits, misses, l2Errors, busEvictions atomic.Uint64
}

type l2Result struct {
	rec Record
	ttl time.Duration
	ok  bool
}

var _ cache.Store[string, Record] = (*urlCache)(nil)

func (c *urlCache) Get(ctx context.Context, key string) (Record, time.Duration, bool, error) {
	if v, ttl, ok, _ := c.l1.AsStore().Get(ctx, key); ok {
		c.l1Hits.Add(1)
		return v, ttl, true, nil
	}
	if c.l2 == nil {
		c.misses.Add(1)
		return Record{}, 0, false, nil
	}
	res, err := c.pipe.Execute(ctx, func(ctx context.Context) (l2Result, error) {
		v, ttl, ok, err := c.l2.Get(ctx, key)
		return l2Result{v, ttl, ok}, err
	})
	if err != nil || !res.ok {
		if err != nil {
			c.l2Errors.Add(1)
		}
		c.misses.Add(1)
		return Record{}, 0, false, nil // the caller falls back to the store
	}
	c.l2Hits.Add(1)
	_ = c.l1.SetWithTTL(key, res.rec, c.capTTL(res.ttl))
	return res.rec, res.ttl, true, nil
}

func (c *urlCache) capTTL(ttl time.Duration) time.Duration {
	if ttl == 0 || ttl > c.l1TTL {
		return c.l1TTL
	}
	return ttl
}

// Set puts key in L1 and, with Redis, in L2. It publishes no
// invalidation (see urlCache): the aside calls it to fill the cache after
// a miss, the service to warm a new code.
func (c *urlCache) Set(ctx context.Context, key string, v Record, ttl time.Duration) error {
	if err := c.l1.SetWithTTL(key, v, c.capTTL(ttl)); err != nil {
		return err
	}
	if c.l2 == nil {
		return nil
	}
	_, err := c.pipe.Execute(ctx, func(ctx context.Context) (l2Result, error) {
		return l2Result{}, c.l2.Set(ctx, key, v, ttl)
	})
	if err != nil {
		c.l2Errors.Add(1)
	}
	return nil // L1 holds it and the store is the truth: an L2 failure is not the caller's
}

// Delete drops key from L1, from the L1 of every instance on the bus, and,
// with Redis, from L2 and (by pub/sub) from every other process's L1.
// With Redis unreachable the other processes keep the entry until their
// L1 TTL ends, which bounds staleness after a delete; the error says so.
func (c *urlCache) Delete(ctx context.Context, key string) error {
	c.l1.Delete(key)
	if c.bus != nil {
		c.bus.invalidate(c, key)
	}
	if c.ml == nil {
		return nil
	}
	_, err := c.pipe.Execute(ctx, func(ctx context.Context) (l2Result, error) {
		return l2Result{}, c.ml.Delete(ctx, key)
	})
	if err != nil {
		c.l2Errors.Add(1)
	}
	return err
}

// breakerState returns the L2 breaker's state; closed without Redis.
func (c *urlCache) breakerState() resilience.State {
	if c.cb == nil {
		return resilience.StateClosed
	}
	return c.cb.State()
}

// rejected returns the number of Redis calls the breaker short-circuited.
func (c *urlCache) rejected() uint64 {
	if c.cb == nil {
		return 0
	}
	return c.cb.Stats().Rejected
}

func (c *urlCache) close(ctx context.Context) error {
	if c.bus != nil {
		c.bus.leave(c)
	}
	if c.ml != nil {
		return c.ml.Close(ctx)
	}
	return nil
}
