package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

// Under a 2 | 3 partition, ONE answers everything on both sides; QUORUM
// answers nothing on the minority and everything on the majority; ALL
// completes no write.
func TestReplicaCAPAvailabilityFollowsTheLevel(t *testing.T) {
	env := &lab.Env{Seed: 1, Quick: true}
	for _, tt := range []struct {
		lvl                replica.Level
		minority, majority bool
	}{{replica.One, true, true}, {replica.Quorum, false, true}, {replica.All, false, false}} {
		r, err := replicaCAPRun(consensusLabCtx(t), env, tt.lvl)
		require.NoError(t, err)
		for side, want := range []bool{tt.minority, tt.majority} {
			s := r.sides[side]
			if want {
				assert.Equal(t, s.writes, s.writesOK, "%v side %d", tt.lvl, side)
				assert.Equal(t, s.reads, s.readsOK, "%v side %d", tt.lvl, side)
			} else {
				assert.Zero(t, s.writesOK, "%v side %d", tt.lvl, side)
			}
		}
		if tt.lvl == replica.One {
			assert.Equal(t, r.sides[0].readsOK, r.sides[0].stale, "the minority never sees the majority's writes")
			assert.Equal(t, r.keys, r.conflicts, "both sides wrote every key")
		}
	}
}

// The WARS model: strict quorums are always consistent, partial ones less
// so at first and more so with time, and more with a larger R or W.
func TestReplicaPBSModel(t *testing.T) {
	env := &lab.Env{Seed: 1}
	for _, lat := range pbsLatencies {
		p311 := pbsModel(env.Rand(1), lat, 3, 1, 1, 20_000)
		p312 := pbsModel(env.Rand(1), lat, 3, 1, 2, 20_000)
		p322 := pbsModel(env.Rand(1), lat, 3, 2, 2, 20_000)
		for k := range pbsTimes {
			assert.Equal(t, 1.0, p322[k], lat.name)
			if k > 0 {
				assert.GreaterOrEqual(t, p311[k], p311[k-1], "%s: consistency never falls with time", lat.name)
			}
		}
		assert.Less(t, p311[0], 0.9, lat.name)
		assert.Greater(t, p312[0], p311[0], lat.name)
		assert.Greater(t, p311[len(p311)-1], 0.99, lat.name)
	}
	// The store agrees with the model where the model is exact.
	p, err := pbsStore(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true}, 2, 2, 30)
	require.NoError(t, err)
	assert.Equal(t, 1.0, p, "R + W > N on the store")
}

// With tokens, no session guarantee is broken.
func TestReplicaSessionsTokensPreventViolations(t *testing.T) {
	r, err := replicaSessionsRun(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true}, true)
	require.NoError(t, err)
	assert.Zero(t, r.violations.Total(), "%+v", r.violations)
	assert.Greater(t, r.ops, 900)
}

// Version vectors lose no acknowledged update.
func TestReplicaVersionVectorsLoseNothing(t *testing.T) {
	r, err := replicaLWWRun(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true}, false)
	require.NoError(t, err)
	assert.Equal(t, r.acked, r.kept)
	assert.Equal(t, 100, r.acked)
}
