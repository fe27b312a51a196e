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
