package resilience

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDLQBadInput(t *testing.T) {
	q := NewMemoryQueue()
	_, err := NewDLQWorker(nil, func(context.Context, Message) error { return nil }, DLQWorkerOptions{MaxAttempts: 3})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewDLQWorker(q, nil, DLQWorkerOptions{MaxAttempts: 3})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "nil handler")
	for _, n := range []int{0, -2} { // no default number of deliveries
		w, err := NewDLQWorker(q, func(context.Context, Message) error { return nil }, DLQWorkerOptions{MaxAttempts: n})
		assert.Nil(t, w)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.True(t, strings.Contains(err.Error(), fmt.Sprintf("got %d", n)), err)
	}
}
