package service

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// urlCache is the cache of short code → [Record]: an L1 [cache.Memory] in
// this process, over an L2 [cache.Redis] when Redis is configured, with
// [cache.MultiLevel]'s pub/sub invalidation so that a delete on one
// instance evicts the code from every instance's L1.
//
// Every L2 call runs through a circuit breaker and a timeout
// ([resilience.NewPipeline]): when Redis fails, the breaker opens after a
// few failures and L2 is skipped entirely — lookups cost an L1 probe and,
// on a miss, a store read, never a Redis timeout — until a probe after
// BreakerOpen finds Redis back. MultiLevel.Lookup hides L2 errors (it
// reports them to a hook and returns a miss), which would keep the breaker
// from seeing them, so lookups read the two levels here and only writes
// go through MultiLevel.
//
// It implements [cache.Store], so a [cache.Aside] runs over it. Safe for
// concurrent use.
type urlCache struct {
	l1    *cache.Memory[string, Record]
	l2    *cache.Redis[Record]           // nil without Redis
	ml    *cache.MultiLevel[Record]      // nil without Redis
	l1TTL time.Duration                  // cap on L1 lifetimes
	pipe  *resilience.Pipeline[l2Result] // breaker → timeout
	cb    *resilience.CircuitBreaker[l2Result]

	l1Hits, l2Hits, misses, l2Errors atomic.Uint64
}

type l2Result struct {
	rec Record
	ttl time.Duration
	ok  bool
}

var _ cache.Store[string, Record] = (*urlCache)(nil)

func (c *urlCache) Lookup(ctx context.Context, key string) (Record, time.Duration, bool, error) {
	if v, ttl, ok, _ := c.l1.Lookup(ctx, key); ok {
		c.l1Hits.Add(1)
		return v, ttl, true, nil
	}
	if c.l2 == nil {
		c.misses.Add(1)
		return Record{}, 0, false, nil
	}
	res, err := c.pipe.Execute(ctx, func(ctx context.Context) (l2Result, error) {
		v, ttl, ok, err := c.l2.Lookup(ctx, key)
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

func (c *urlCache) Save(ctx context.Context, key string, v Record, ttl time.Duration) error {
	if err := c.l1.SetWithTTL(key, v, c.capTTL(ttl)); err != nil {
		return err
	}
	if c.ml == nil {
		return nil
	}
	_, err := c.pipe.Execute(ctx, func(ctx context.Context) (l2Result, error) {
		return l2Result{}, c.ml.Save(ctx, key, v, ttl)
	})
	if err != nil {
		c.l2Errors.Add(1)
	}
	return nil // L1 holds it and the store is the truth: an L2 failure is not the caller's
}

// Remove drops key from L1, L2 and (by pub/sub) every other instance's L1.
// With Redis unreachable only the local L1 is cleared; the others keep the
// entry until their L1 TTL ends, which bounds staleness after a delete.
func (c *urlCache) Remove(ctx context.Context, key string) error {
	c.l1.Delete(key)
	if c.ml == nil {
		return nil
	}
	_, err := c.pipe.Execute(ctx, func(ctx context.Context) (l2Result, error) {
		return l2Result{}, c.ml.Remove(ctx, key)
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

func (c *urlCache) close() error {
	if c.ml != nil {
		return c.ml.Close()
	}
	return nil
}
