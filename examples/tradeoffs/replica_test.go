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

// The replica experiments' verdicts follow their numbers, and each reason
// quotes them.
func TestReplicaVerdictsFollowTheNumbers(t *testing.T) {
	side := func(ok, stale int) capLevelSide {
		return capLevelSide{writes: 8, writesOK: ok, reads: 8, readsOK: ok, stale: stale}
	}
	one := capLevel{level: replica.One, sides: [2]capLevelSide{side(8, 8), side(8, 1)}, conflicts: 4, keys: 4}
	quorum := capLevel{level: replica.Quorum, sides: [2]capLevelSide{side(0, 0), side(8, 0)}, conflicts: 3, keys: 4}
	cpLike := quorum
	cpLike.sides[0] = side(8, 0)
	down := one
	down.sides[0] = side(4, 4)
	sessions := func(violations int) sessionRun {
		return sessionRun{ops: 1000, violations: replica.SessionViolations{ReadYourWrites: violations}}
	}
	for name, tc := range map[string]struct {
		v      lab.Verdict
		reason string
		want   lab.Verdict
		quote  string
	}{
		"cap: per-request AP/CP":  {want: lab.Nuance, quote: "3 of 4 keys still end in conflict"},
		"cap: quorum available":   {want: lab.Agrees, quote: "4 of 4 keys in conflict"},
		"cap: ONE unavailable":    {want: lab.Refutes, quote: "50%"},
		"pbs: short window":       {want: lab.Nuance, quote: "0.751"},
		"pbs: strict read stale":  {want: lab.Refutes, quote: "0.9990"},
		"sessions: token works":   {want: lab.Agrees, quote: "35 of 1000"},
		"sessions: token fails":   {want: lab.Refutes, quote: "2 guarantees"},
		"lww: vv keeps, lww lost": {want: lab.Agrees, quote: "lost 64 of 100"},
		"lww: vv lost":            {want: lab.Refutes, quote: "lost 1 of 100"},
	} {
		switch name {
		case "cap: per-request AP/CP":
			tc.v, tc.reason = replicaCAPVerdict(one, quorum)
		case "cap: quorum available":
			tc.v, tc.reason = replicaCAPVerdict(one, cpLike)
		case "cap: ONE unavailable":
			tc.v, tc.reason = replicaCAPVerdict(down, quorum)
		case "pbs: short window":
			tc.v, tc.reason = replicaPBSVerdict([]float64{0.751, 0.85, 0.91, 0.97, 0.9983, 1, 1, 1, 1}, 1, 1)
		case "pbs: strict read stale":
			tc.v, tc.reason = replicaPBSVerdict([]float64{0.751, 1, 1, 1, 1, 1, 1, 1, 1}, 0.999, 1)
		case "sessions: token works":
			tc.v, tc.reason = replicaSessionsVerdict(sessions(35), sessions(0))
		case "sessions: token fails":
			tc.v, tc.reason = replicaSessionsVerdict(sessions(35), sessions(2))
		case "lww: vv keeps, lww lost":
			tc.v, tc.reason = replicaLWWVerdict(lwwRun{acked: 100, kept: 36}, lwwRun{acked: 100, kept: 100})
		case "lww: vv lost":
			tc.v, tc.reason = replicaLWWVerdict(lwwRun{acked: 100, kept: 36}, lwwRun{acked: 100, kept: 99})
		}
		assert.Equal(t, tc.want, tc.v, name)
		assert.Contains(t, tc.reason, tc.quote, name)
	}
}
