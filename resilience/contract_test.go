package resilience_test

import (
	"testing"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/breakertest"
	"github.com/sysdesign-go/sysdesign/resilience/internal/queuetest"
)

// The contracts of the in-memory MessageQueue and BreakerStore; packages
// redisqueue and redisbreaker run the same ones on Redis.

func TestDLQWorkerDeadLettersPoisonMessages(t *testing.T) {
	queuetest.DeadLettersPoisonMessages(t, resilience.NewMemoryQueue())
}

func TestDLQWorkerRestartLosesNothing(t *testing.T) {
	q := resilience.NewMemoryQueue()
	queuetest.RestartLosesNothing(t, func() resilience.MessageQueue { return q })
}

func TestSharedBreakerAcrossInstances(t *testing.T) {
	breakertest.SharedBreakerAcrossInstances(t, resilience.NewMemoryBreakerStore())
}

func TestSharedBreakerStoreRules(t *testing.T) {
	breakertest.StoreRules(t, resilience.NewMemoryBreakerStore())
}
