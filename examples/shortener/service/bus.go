package service

import "sync"

// Bus carries cache invalidations between the instances of one process —
// The guide, Caching Strategies, "Event-Driven: Invalidate on data changes"
// — without Redis: when one instance deletes a code, [Bus] removes it from
// the L1 of every other instance on the bus before the delete is answered.
// [Start] gives the instances of a cluster one bus.
//
// It reaches only this process. Instances in other processes learn of a
// change through the Redis invalidation channel (Config.Redis); without
// Redis their L1 serves a deleted code until its entry expires
// (Config.CacheTTL).
//
// The zero value is an empty bus ready to use. A Bus is safe for
// concurrent use.
type Bus struct {
	mu    sync.RWMutex
	peers map[*urlCache]struct{} // guarded by mu
}

// join adds c to the bus.
func (b *Bus) join(c *urlCache) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.peers == nil {
		b.peers = map[*urlCache]struct{}{}
	}
	b.peers[c] = struct{}{}
}

// leave removes c from the bus.
func (b *Bus) leave(c *urlCache) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.peers, c)
}

// invalidate removes key from the L1 of every member but from. It returns
// the number of members that held the key.
func (b *Bus) invalidate(from *urlCache, key string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for c := range b.peers {
		if c != from && c.l1.Delete(key) {
			c.busEvictions.Add(1)
			n++
		}
	}
	return n
}
