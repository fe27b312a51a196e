package shard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/internal/storetest"
)

// Package redisshard runs the same contracts on Redis.

func TestStore_Contract(t *testing.T) {
	storetest.Store(t, func(string) shard.Store { return &shard.MemStore{} })
}

func TestMemStore_DelayAndFault(t *testing.T) {
	var s shard.MemStore
	boom := errors.New("boom")
	s.SetFault(boom)
	assert.ErrorIs(t, s.Put(context.Background(), "k", nil), boom)
	s.SetFault(nil)
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, "k")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// Every Checkpoint implementation keeps the last saved key per shard.
func TestCheckpoint_Contract(t *testing.T) {
	storetest.Checkpoint(t, &shard.MemCheckpoint{})
}

func TestRouter_RoutesAndQueries(t *testing.T) {
	storetest.Router(t, func(string) shard.Store { return &shard.MemStore{} })
}
