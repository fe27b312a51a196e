package service

import (
	"context"
	"sync"

	"github.com/sysdesign-go/sysdesign/cache"
)

// Click analytics — the guide, URL Shortener, "Analytics: Click tracking and
// statistics", kept off the request path with write-behind batching
// ([cache.WriteBehind]).
//
// A redirect only increments an in-memory total for its code and queues
// the code as dirty; the write-behind flusher later writes, in one batch
// per shard, the difference between each code's total and what was
// already written. The queue carries dirty codes rather than increments
// because write-behind coalesces queued writes of one key: two clicks
// queued together become one write of the latest total, never a lost
// increment. A failed batch is retried; flushed totals advance only for
// the shards whose transaction committed, so a retry never counts a click
// twice. Close flushes everything: no click is lost on a graceful stop.
// What a crash loses is the unflushed part (at most Interval's worth) —
// the guide's write-behind trade, acceptable for analytics and never for
// the URLs themselves, which are written through.
type clicks struct {
	storage *Storage
	wb      *cache.WriteBehind[string, struct{}]

	mu     sync.Mutex
	counts map[string]*clickCount // guarded by mu
}

type clickCount struct{ total, flushed uint64 }

func newClicks(storage *Storage, batch int, opts cache.WriteBehindOptions) (*clicks, error) {
	c := &clicks{storage: storage, counts: map[string]*clickCount{}}
	// The dirty set lives in the write-behind queue; its cache holds
	// nothing the service reads, so it is small.
	mem, err := cache.NewMemory(1024, cache.MemoryOptions[string, struct{}]{Policy: cache.LRU})
	if err != nil {
		return nil, err
	}
	opts.BatchSize = batch
	c.wb, err = cache.NewWriteBehind[string, struct{}](mem.AsStore(), cache.BatchWriterFunc[string, struct{}](c.write), opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// click counts one click of code. It blocks only when the write-behind
// queue is full (its FullBlock policy), which bounds memory.
func (c *clicks) click(ctx context.Context, code string) error {
	c.mu.Lock()
	cc := c.counts[code]
	if cc == nil {
		cc = &clickCount{}
		c.counts[code] = cc
	}
	cc.total++
	c.mu.Unlock()
	return c.wb.Set(ctx, code, struct{}{})
}

// pending returns the clicks of code counted here but not yet written.
func (c *clicks) pending(code string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.counts[code]; cc != nil {
		return cc.total - cc.flushed
	}
	return 0
}

// write is the write-behind batch writer.
func (c *clicks) write(ctx context.Context, batch []cache.Write[string, struct{}]) error {
	deltas := map[string]uint64{}
	totals := map[string]uint64{}
	c.mu.Lock()
	for _, w := range batch {
		if cc := c.counts[w.Key]; cc != nil && cc.total > cc.flushed {
			deltas["c:"+w.Key] = cc.total - cc.flushed
			totals[w.Key] = cc.total
		}
	}
	c.mu.Unlock()
	if len(deltas) == 0 {
		return nil
	}
	return c.storage.AddCounts(ctx, deltas, func(keys []string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, k := range keys {
			code := k[2:]
			cc := c.counts[code]
			cc.flushed = totals[code]
			if cc.flushed == cc.total {
				delete(c.counts, code) // memory stays bounded by the dirty codes
			}
		}
	})
}

func (c *clicks) stats() cache.WriteBehindStats { return c.wb.Stats() }

// close flushes every counted click and stops the flusher.
func (c *clicks) close(ctx context.Context) error { return c.wb.Close(ctx) }
