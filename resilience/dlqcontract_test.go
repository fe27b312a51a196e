package resilience_test

import (
	"testing"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/queuetest"
)

// Package redisqueue runs the same contract on Redis.

func TestDLQWorkerDeadLettersPoisonMessages(t *testing.T) {
	queuetest.DeadLettersPoisonMessages(t, resilience.NewMemoryQueue())
}

func TestDLQWorkerRestartLosesNothing(t *testing.T) {
	q := resilience.NewMemoryQueue()
	queuetest.RestartLosesNothing(t, func() resilience.MessageQueue { return q })
}
