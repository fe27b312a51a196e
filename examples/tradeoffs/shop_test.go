package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func requireRedisOrSkip(t *testing.T, skipped string) {
	t.Helper()
	if skipped == "" {
		return
	}
	if redistest.Required() {
		t.Fatalf("%s; CI or SYSDESIGN_REQUIRE_REDIS is set, so this test may not skip", skipped)
	}
	t.Skip(skipped)
}

// Every inventory sells the stock without oversell; cut off, none sells;
// only the reservations return a crashed checkout's unit by themselves.
func TestShopInventory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r, err := shopInventoryRun(ctx, &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	requireRedisOrSkip(t, r.skipped)
	require.Len(t, r.points, 3)
	for _, p := range r.points {
		assert.Equal(t, p.stock, p.sold, p.name)
		assert.Zero(t, p.oversold, p.name)
		assert.Zero(t, p.partOK, "%s sold while cut off", p.name)
		assert.Positive(t, p.partTried, p.name)
	}
	assert.Equal(t, 1, r.points[1].leakedAfterCrash, "redis holds never expire")
	assert.Equal(t, 0, r.points[2].leakedAfterCrash, "reservations expire")
	v, reason := shopInventoryVerdict(r)
	assert.Contains(t, []lab.Verdict{lab.Agrees, lab.Nuance}, v, reason)
}

// Choreography sends more messages per order than orchestration; the
// crash leaves orders holding stock that recovery finishes.
func TestShopSaga(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r, err := shopSagaRun(ctx, &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	requireRedisOrSkip(t, r.skipped)
	require.Len(t, r.points, 2)
	orch, chor := r.points[0], r.points[1]
	assert.Greater(t, float64(chor.messages)/float64(chor.orders), float64(orch.messages)/float64(orch.orders))
	assert.Positive(t, r.crashed)
	assert.Equal(t, r.crashed, r.heldUnits, "each crashed order holds its unit")
	assert.Zero(t, r.unfinishedAfter)
	v, _ := shopSagaVerdict(r)
	assert.Equal(t, lab.Nuance, v)
}

// The verdicts follow the numbers.
func TestShopVerdictsFlip(t *testing.T) {
	pt := func(name string, buyers int, d time.Duration, partOK, oversold int) invPoint {
		return invPoint{name: name, buyers: buyers, stock: 10, sold: 10, elapsed: d, partTried: 5, partOK: partOK, oversold: oversold}
	}
	v, reason := shopInventoryVerdict(invResult{points: []invPoint{pt("raft", 100, time.Second, 0, 0), pt("redis", 100, time.Second, 0, 0)}})
	assert.Equal(t, lab.Agrees, v, reason)
	v, reason = shopInventoryVerdict(invResult{points: []invPoint{pt("raft", 100, 4*time.Second, 0, 0), pt("redis", 100, time.Second, 0, 0)}})
	assert.Equal(t, lab.Nuance, v, reason)
	assert.Contains(t, reason, "4.0×")
	v, reason = shopInventoryVerdict(invResult{points: []invPoint{pt("raft", 100, time.Second, 2, 0)}})
	assert.Equal(t, lab.Refutes, v, reason)
	assert.Contains(t, reason, "2 of 5")
	v, _ = shopInventoryVerdict(invResult{points: []invPoint{pt("raft", 100, time.Second, 0, 1)}})
	assert.Equal(t, lab.Refutes, v)

	saga := func(crashed, after int) sagaResult {
		return sagaResult{points: []sagaPoint{{name: "orchestration", orders: 10, messages: 90}, {name: "choreography", orders: 10, messages: 300}},
			crashed: crashed, heldUnits: crashed, unfinishedAfter: after}
	}
	v, reason = shopSagaVerdict(saga(0, 0))
	assert.Equal(t, lab.Agrees, v, reason)
	v, reason = shopSagaVerdict(saga(3, 0))
	assert.Equal(t, lab.Nuance, v, reason)
	assert.Contains(t, reason, "30.0 messages")
	v, reason = shopSagaVerdict(saga(3, 1))
	assert.Equal(t, lab.Refutes, v, reason)
}
