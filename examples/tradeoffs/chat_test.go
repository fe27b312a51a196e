package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// With a fifth of the replies lost, at-least-once stores and shows the
// resends again; exactly-once stores and shows each message once.
func TestChatDelivery(t *testing.T) {
	redistest.New(t) // skips, or fails when Redis is required, without one
	env := &lab.Env{Seed: 1, Quick: true}
	alo, skipped, err := measureChatDelivery(context.Background(), env, service.AtLeastOnce, 0.2, 40)
	require.NoError(t, err)
	require.Empty(t, skipped)
	eo, _, err := measureChatDelivery(context.Background(), env, service.ExactlyOnce, 0.2, 40)
	require.NoError(t, err)
	assert.Equal(t, alo.resends, eo.resends, "the same seed loses the same replies")
	assert.Positive(t, alo.resends)
	assert.Equal(t, alo.resends, alo.duplicates, "every resend is shown again")
	assert.Equal(t, int64(40+alo.resends), alo.stored)
	assert.Zero(t, eo.duplicates)
	assert.Equal(t, int64(40), eo.stored)
	assert.GreaterOrEqual(t, alo.p99, chatResendAfter, "a lost reply costs the resend delay")
}

// Fan-out on write writes one inbox copy per member; at read time none,
// and the offline member syncs the group either way.
func TestChatFanout(t *testing.T) {
	redistest.New(t)
	w, skipped, err := measureChatFanout(context.Background(), true, 16, 10)
	require.NoError(t, err)
	require.Empty(t, skipped)
	r, _, err := measureChatFanout(context.Background(), false, 16, 10)
	require.NoError(t, err)
	assert.Equal(t, 16.0, w.writesPerMsg)
	assert.Zero(t, r.writesPerMsg)
	assert.Positive(t, w.sync)
	assert.Positive(t, r.sync)
}

// Verdicts follow the numbers.
func TestChatVerdicts(t *testing.T) {
	v, reason := chatDeliveryVerdict([]*chatDeliveryCell{
		{mode: service.AtLeastOnce, drop: 0.2, duplicates: 7}, {mode: service.ExactlyOnce, drop: 0.2},
	})
	assert.Equal(t, lab.Agrees, v)
	assert.Contains(t, reason, "at-least-once showed 7 duplicates and exactly-once 0")
	v, _ = chatDeliveryVerdict([]*chatDeliveryCell{
		{mode: service.AtLeastOnce, drop: 0.2, duplicates: 7}, {mode: service.ExactlyOnce, drop: 0.2, duplicates: 1},
	})
	assert.Equal(t, lab.Refutes, v)

	ms := time.Millisecond
	cells := []*chatFanoutCell{
		{mode: "write", size: 2, writesPerMsg: 2, send: ms}, {mode: "read", size: 2, send: ms},
		{mode: "write", size: 512, writesPerMsg: 512, send: 10 * ms}, {mode: "read", size: 512, send: ms},
	}
	v, reason = chatFanoutVerdict(cells)
	assert.Equal(t, lab.Agrees, v)
	assert.Contains(t, reason, "10.0× longer (512 inbox copies per message)")
	cells[2].send = ms
	v, _ = chatFanoutVerdict(cells)
	assert.Equal(t, lab.Nuance, v)
}
