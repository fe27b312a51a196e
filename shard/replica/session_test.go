package replica

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoCoordinators returns a cluster of three nodes and two coordinators,
// "ca" and "cb", sharing a session key.
func twoCoordinators(t *testing.T, cfg Config) (*testCluster, *Coordinator, *Coordinator) {
	tc := newTestCluster(t, 3, 3)
	cfg.SessionKey = []byte("cluster secret")
	return tc, tc.coordinatorAt(t, "ca", cfg), tc.coordinatorAt(t, "cb", cfg)
}

func TestSession_ReadYourWritesAcrossCoordinators(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc, ca, cb := twoCoordinators(t, Config{Timeout: 100 * time.Millisecond, DisableReadRepair: true})
		ctx := context.Background()
		p := tc.prefs("k", 3)
		_, err := ca.Put(ctx, "k", []byte("v0"), Context{}, Options{Level: All})
		require.NoError(t, err)

		// ca reaches only p[0]; cb reaches p[0] slowly.
		tc.net.Cut("ca", p[1])
		tc.net.Cut("ca", p[2])
		tc.net.SetLatency(func(from, to string) time.Duration {
			if (from == "cb" && to == p[0]) || (from == p[0] && to == "cb") {
				return 20 * time.Millisecond
			}
			return 0
		})
		var s Session
		var history []SessionEvent
		wrote, err := ca.Put(ctx, "k", []byte("v1"), Context{}, Options{Level: One, Session: &s})
		require.NoError(t, err)
		history = append(history, SessionEvent{Session: "with", Key: "k", Write: true, Result: wrote})
		history = append(history, SessionEvent{Session: "without", Key: "k", Write: true, Result: wrote})

		// Without the session, a read at ONE elsewhere misses the write.
		got, err := cb.Get(ctx, "k", Options{Level: One})
		require.NoError(t, err)
		assert.Equal(t, []string{"v0"}, strs(got.Values))
		history = append(history, SessionEvent{Session: "without", Key: "k", Result: got})

		// With it, carried as a token, the read waits for a replica that
		// has the write.
		s2, err := cb.ResumeSession(ca.SessionToken(&s))
		require.NoError(t, err)
		start := time.Now()
		got, err = cb.Get(ctx, "k", Options{Level: One, Session: s2})
		require.NoError(t, err)
		assert.Contains(t, strs(got.Values), "v1")
		assert.Equal(t, 40*time.Millisecond, time.Since(start), "the round trip to p[0]")
		history = append(history, SessionEvent{Session: "with", Key: "k", Result: got})

		assert.Equal(t, SessionViolations{ReadYourWrites: 1}, CheckSessions(history))

		// No replica as recent as the session: an error, not old data.
		tc.net.Cut("cb", p[0])
		_, err = cb.Get(ctx, "k", Options{Level: One, Session: s2})
		require.ErrorIs(t, err, ErrSessionUnavailable)
		tc.net.Heal()
		synctest.Wait()
	})
}

func TestSession_MonotonicReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc, ca, cb := twoCoordinators(t, Config{DisableReadRepair: true})
		ctx := context.Background()
		p := tc.prefs("k", 3)
		_, err := ca.Put(ctx, "k", []byte("v0"), Context{}, Options{Level: All})
		require.NoError(t, err)
		tc.net.Crash(p[2])
		_, err = ca.Put(ctx, "k", []byte("v1"), Context{}, Options{Level: Quorum})
		require.NoError(t, err)
		tc.net.Register(p[2], tc.nodes[p[2]]) // back, without v1

		// cb answers from p[2] first; ca from the others.
		tc.net.SetLatency(func(from, to string) time.Duration {
			if (from == "cb") != (to == p[2]) {
				return 10 * time.Millisecond
			}
			return 0
		})
		for _, tt := range []struct {
			name string
			s    *Session
			want SessionViolations
		}{{"without", nil, SessionViolations{MonotonicReads: 1}}, {"with", new(Session), SessionViolations{}}} {
			var h []SessionEvent
			got, err := ca.Get(ctx, "k", Options{Level: One, Session: tt.s})
			require.NoError(t, err)
			h = append(h, SessionEvent{Session: tt.name, Key: "k", Result: got})
			got, err = cb.Get(ctx, "k", Options{Level: One, Session: tt.s})
			require.NoError(t, err)
			h = append(h, SessionEvent{Session: tt.name, Key: "k", Result: got})
			assert.Equal(t, tt.want, CheckSessions(h), tt.name)
			if tt.s != nil {
				assert.Contains(t, strs(got.Values), "v1", "a session never reads older than it did")
			}
		}
		synctest.Wait()
	})
}

func TestSession_MonotonicWritesAndWritesFollowReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ca, _ := twoCoordinators(t, Config{})
		ctx := context.Background()
		for _, tt := range []struct {
			name string
			s    *Session
			want []string
			viol SessionViolations
		}{
			{"without", nil, []string{"first", "second"}, SessionViolations{MonotonicWrites: 1}},
			{"with", new(Session), []string{"second"}, SessionViolations{}},
		} {
			key := "k-" + tt.name
			var h []SessionEvent
			// Two blind writes in a row: without a session they are
			// concurrent siblings; with one, the second follows the first.
			for _, v := range []string{"first", "second"} {
				wrote, err := ca.Put(ctx, key, []byte(v), Context{}, Options{Session: tt.s})
				require.NoError(t, err)
				h = append(h, SessionEvent{Session: tt.name, Key: key, Write: true, Result: wrote})
			}
			synctest.Wait()
			got, err := ca.Get(ctx, key, Options{Level: All})
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, strs(got.Values), tt.name)
			assert.Equal(t, tt.viol, CheckSessions(h), tt.name)
		}

		// Writes follow reads: a session that read "x" writes after it.
		var s Session
		_, err := ca.Put(ctx, "r", []byte("x"), Context{}, Options{})
		require.NoError(t, err)
		got, err := ca.Get(ctx, "r", Options{Session: &s})
		require.NoError(t, err)
		blind, err := ca.Put(ctx, "r", []byte("y"), Context{}, Options{})
		require.NoError(t, err)
		follows, err := ca.Put(ctx, "r", []byte("z"), Context{}, Options{Session: &s})
		require.NoError(t, err)
		assert.Equal(t, SessionViolations{WritesFollowReads: 1}, CheckSessions([]SessionEvent{
			{Session: "a", Key: "r", Result: got}, {Session: "a", Key: "r", Write: true, Result: blind},
			{Session: "b", Key: "r", Result: got}, {Session: "b", Key: "r", Write: true, Result: follows},
		}))
		synctest.Wait()
		got, err = ca.Get(ctx, "r", Options{Level: All})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"y", "z"}, strs(got.Values), "z superseded x, which its session read, not y")
	})
}

func TestSession_Tokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc, ca, cb := twoCoordinators(t, Config{SessionTTL: time.Minute})
		other := tc.coordinatorAt(t, "other", Config{SessionKey: []byte("another secret")})
		ctx := context.Background()
		var s Session
		_, err := ca.Put(ctx, "k", []byte("v"), Context{}, Options{Session: &s})
		require.NoError(t, err)
		tok := ca.SessionToken(&s)

		s2, err := cb.ResumeSession(tok)
		require.NoError(t, err)
		assert.Equal(t, s.vector("k"), s2.vector("k"))

		body, sig, _ := strings.Cut(tok, ".")
		forged := []byte(body)
		forged[len(forged)/2] ^= 1
		for name, bad := range map[string]string{
			"empty":            "",
			"not base64":       "!!.!!",
			"no signature":     body,
			"altered":          string(forged) + "." + sig,
			"another key":      other.SessionToken(&s),
			"signature elided": body + ".",
		} {
			_, err := cb.ResumeSession(bad)
			assert.ErrorIs(t, err, ErrSessionToken, name)
			assert.ErrorIs(t, err, ErrInvalidArgument, name)
		}
		// Unkeyed coordinators each sign with a random key of their own.
		u1 := tc.coordinatorAt(t, "u1", Config{})
		u2 := tc.coordinatorAt(t, "u2", Config{})
		_, err = u2.ResumeSession(u1.SessionToken(&s))
		assert.ErrorIs(t, err, ErrSessionToken, "a token of another unkeyed coordinator")
		_, err = u1.ResumeSession(u1.SessionToken(&s))
		require.NoError(t, err)

		time.Sleep(time.Minute)
		_, err = cb.ResumeSession(tok)
		require.NoError(t, err, "a token is valid for the whole SessionTTL")
		time.Sleep(time.Nanosecond)
		_, err = cb.ResumeSession(tok)
		assert.ErrorIs(t, err, ErrSessionToken, "stale")
		assert.ErrorContains(t, err, "stale")
		synctest.Wait()
	})
}
