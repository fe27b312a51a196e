package dlq_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/dlq"
	"github.com/sysdesign-go/sysdesign/resilience/internal/queuetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The contract of the in-memory Queue; package redisdlq runs the same one
// on Redis.

func TestWorkerDeadLettersPoisonMessages(t *testing.T) {
	queuetest.DeadLettersPoisonMessages(t, dlq.NewMemoryQueue())
}

func TestQueueRecoverKeepsOrder(t *testing.T) {
	queuetest.RecoverKeepsOrder(t, dlq.NewMemoryQueue())
}

func TestQueueReceiveWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { queuetest.ReceiveWaits(t, dlq.NewMemoryQueue()) })
}

func TestWorkerRestartLosesNothing(t *testing.T) {
	q := dlq.NewMemoryQueue()
	queuetest.RestartLosesNothing(t, func() dlq.Queue { return q })
}

func TestWorkerCloseFinishesTheMessageInHand(t *testing.T) {
	queuetest.CloseFinishesTheMessageInHand(t, dlq.NewMemoryQueue())
}

func TestWorkerCloseStopsAnIdleWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { queuetest.CloseStopsAnIdleWorker(t, dlq.NewMemoryQueue()) })
}

// Each bad option is an error wrapping resilience.ErrInvalidConfig that
// names the value; there is no default number of deliveries.
func TestNewWorkerBadInput(t *testing.T) {
	q := dlq.NewMemoryQueue()
	noop := func(context.Context, dlq.Message) error { return nil }
	for _, c := range []struct {
		name string
		opts dlq.WorkerOptions
		want string
	}{
		{"no queue", dlq.WorkerOptions{Handler: noop, MaxAttempts: 3}, "needs a Queue"},
		{"nil handler", dlq.WorkerOptions{Queue: q, MaxAttempts: 1}, "nil Handler"},
		{"attempts 0", dlq.WorkerOptions{Queue: q, Handler: noop}, "MaxAttempts must be set to at least 1, got 0"},
		{"attempts -2", dlq.WorkerOptions{Queue: q, Handler: noop, MaxAttempts: -2}, "got -2"},
		{"negative wait", dlq.WorkerOptions{Queue: q, Handler: noop, MaxAttempts: 1, Wait: -time.Second}, "Wait must be positive, got -1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var (
				w   *dlq.Worker
				err error
			)
			require.NotPanics(t, func() { w, err = dlq.NewWorker(c.opts) })
			assert.Nil(t, w)
			require.ErrorIs(t, err, resilience.ErrInvalidConfig)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// A Worker NewWorker did not make returns an error at once from every
// method; a zero MemoryQueue works.
func TestZeroValues(t *testing.T) {
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Run":        func() error { var w dlq.Worker; return w.Run(ctx) },
		"ProcessOne": func() error { var w dlq.Worker; _, err := w.ProcessOne(ctx); return err },
		"Close":      func() error { var w dlq.Worker; return w.Close(ctx) },
		"nil Close":  func() error { var w *dlq.Worker; return w.Close(ctx) },
	} {
		var err error
		require.NotPanics(t, func() { err = call() }, name)
		require.ErrorIs(t, err, resilience.ErrInvalidConfig, name)
		assert.True(t, strings.Contains(err.Error(), "NewWorker"), "%s: %v", name, err)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		var q dlq.MemoryQueue
		_, err := q.Publish(ctx, []byte("a"))
		require.NoError(t, err)
		m, ok, err := q.Receive(ctx, time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, q.Dead(ctx, m, "boom", time.Now()))
		dls, err := q.DeadLetters(ctx, -1)
		require.NoError(t, err)
		assert.Empty(t, dls)
		dls, err = q.DeadLetters(ctx, 10)
		require.NoError(t, err)
		assert.Len(t, dls, 1)
		_, ok, err = q.Receive(ctx, time.Second) // nothing left: waits the full second
		require.NoError(t, err)
		assert.False(t, ok)
	})
}
