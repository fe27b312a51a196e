package resilience_test

import (
	"testing"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/breakertest"
)

// Package redisbreaker runs the same contract on Redis.

func TestSharedBreakerAcrossInstances(t *testing.T) {
	breakertest.SharedBreakerAcrossInstances(t, resilience.NewMemoryBreakerStore())
}

func TestSharedBreakerStoreRules(t *testing.T) {
	breakertest.StoreRules(t, resilience.NewMemoryBreakerStore())
}
