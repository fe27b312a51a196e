package main

import (
	"context"
	"sync/atomic"
	"time"
)

const cacheSection = "Database Design → Caching Strategies"

// slowSource is a source of truth with limited capacity: at most slots
// requests at a time, each taking d.
type slowSource struct {
	slots chan struct{}
	d     time.Duration
	calls atomic.Int64
}

func newSlowSource(slots int, d time.Duration) *slowSource {
	return &slowSource{slots: make(chan struct{}, slots), d: d}
}

func (s *slowSource) load(ctx context.Context, key string) (int, error) {
	s.calls.Add(1)
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-s.slots }()
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
		return len(key), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// mix64 is MurmurHash3's 64-bit finalizer: a fixed hash for the caches of the
// hit-ratio experiments, so that their runs are reproducible.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
