package resilience_test

import (
	"testing"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/breakertest"
)

// The contract of the in-memory BreakerStore; package redisbreaker runs
// the same one on Redis.

func TestSharedBreakerAcrossInstances(t *testing.T) {
	breakertest.SharedBreakerAcrossInstances(t, resilience.NewMemoryBreakerStore())
}

func TestSharedBreakerStoreRules(t *testing.T) {
	breakertest.StoreRules(t, resilience.NewMemoryBreakerStore())
}
