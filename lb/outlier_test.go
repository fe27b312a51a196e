package lb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// events collects a balancer's events; safe for concurrent use.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) states(addr string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Addr == addr && ev.Kind == EventStateChange {
			out = append(out, ev.From.String()+"→"+ev.To.String()+" ("+ev.Reason+")")
		}
	}
	return out
}

var errBackend = errors.New("backend failed")

// failOn reports n failed requests to addr, picking until it is chosen.
func failOn(t *testing.T, b *Balancer, addr string, n int) {
	t.Helper()
	reportOn(t, b, addr, n, errBackend)
}

// reportOn reports n requests to addr with the result err, picking until
// it is chosen; the other backends' picks succeed.
func reportOn(t *testing.T, b *Balancer, addr string, n int, err error) {
	t.Helper()
	for i := 0; n > 0 && i < 10000; i++ {
		p, perr := b.Pick(context.Background(), Request{})
		require.NoError(t, perr)
		if p.Addr() == addr {
			p.Done(Result{Err: err, Latency: time.Millisecond})
			n--
		} else {
			p.Done(Result{Latency: time.Millisecond})
		}
	}
	require.Zero(t, n, "%s was picked often enough", addr)
}

// Consecutive failures eject a backend for a growing time; it returns when
// the time is up.
func TestOutlierEjectsAndReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		b, err := New(RoundRobin{}, backends(10), Options{OnEvent: ev.add, Outlier: &OutlierOptions{}})
		require.NoError(t, err)
		bad := "10.0.0.3:80"
		failOn(t, b, bad, 4)
		assert.Equal(t, StateHealthy, b.Stats().Backends[2].State, "4 failures are not 5")
		failOn(t, b, bad, 1)
		s := b.Stats()
		assert.Equal(t, StateEjected, s.Backends[2].State)
		assert.Equal(t, 9, s.InRotation)
		assert.Zero(t, pickN(t, b, 100)[bad], "ejected backend picked")

		time.Sleep(29 * time.Second)
		assert.Equal(t, StateEjected, b.Stats().Backends[2].State)
		time.Sleep(time.Second)
		assert.Positive(t, pickN(t, b, 100)[bad], "back after 30s")

		// The second ejection lasts twice as long.
		failOn(t, b, bad, 5)
		time.Sleep(59 * time.Second)
		assert.Equal(t, StateEjected, b.Stats().Backends[2].State)
		time.Sleep(time.Second)
		assert.Equal(t, StateHealthy, b.Stats().Backends[2].State)
		assert.Equal(t, 2, b.Stats().Backends[2].Ejections)
		assert.Equal(t, []string{
			"healthy→ejected (5 consecutive failures)", "ejected→healthy (ejection expired)",
			"healthy→ejected (5 consecutive failures)", "ejected→healthy (ejection expired)",
		}, ev.states(bad))
	})
}

// A success resets the run of failures, also when the balancer keeps no
// statistics.
func TestOutlierSuccessResetsRun(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableStats=", disable), func(t *testing.T) {
			var ev events
			b, err := New(RoundRobin{}, backends(2), Options{DisableStats: disable, OnEvent: ev.add,
				Outlier: &OutlierOptions{ConsecutiveFailures: 3}})
			require.NoError(t, err)
			for range 10 {
				failOn(t, b, "10.0.0.1:80", 2)
				p := hold(t, b, 2)
				p[0].Done(Result{})
				p[1].Done(Result{})
			}
			assert.Empty(t, ev.states("10.0.0.1:80"))
			failOn(t, b, "10.0.0.1:80", 3)
			assert.Equal(t, []string{"healthy→ejected (3 consecutive failures)"}, ev.states("10.0.0.1:80"))
		})
	}
}

// An ejection runs from the failure that caused it, on the balancer's
// clock, also when the balancer keeps no statistics.
func TestOutlierEjectionRunsFromTheFailure(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableStats=", disable), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var ev events
				start := time.Now()
				b, err := New(RoundRobin{}, backends(2), Options{DisableStats: disable, OnEvent: ev.add,
					Outlier: &OutlierOptions{ConsecutiveFailures: 2}})
				require.NoError(t, err)
				time.Sleep(100 * time.Second)
				failOn(t, b, "10.0.0.1:80", 2)
				ev.mu.Lock()
				require.Len(t, ev.all, 1)
				assert.Equal(t, start.Add(100*time.Second), ev.all[0].At)
				ev.mu.Unlock()
				time.Sleep(30*time.Second - time.Nanosecond)
				assert.Equal(t, StateEjected, b.Stats().Backends[0].State)
				time.Sleep(time.Nanosecond)
				assert.Equal(t, StateHealthy, b.Stats().Backends[0].State, "back after BaseEjectionTime, 30s")
			})
		})
	}
}

// At most MaxEjectionPercent of backends are ejected, but at least one.
func TestOutlierEjectionCap(t *testing.T) {
	b, err := New(RoundRobin{}, backends(10), Options{Outlier: &OutlierOptions{}})
	require.NoError(t, err)
	failOn(t, b, "10.0.0.1:80", 5)
	failOn(t, b, "10.0.0.2:80", 5)
	s := b.Stats()
	assert.Equal(t, StateEjected, s.Backends[0].State)
	assert.Equal(t, StateHealthy, s.Backends[1].State, "10% of 10 backends is one")

	c, err := New(RoundRobin{}, backends(10), Options{Outlier: &OutlierOptions{MaxEjectionPercent: 30}})
	require.NoError(t, err)
	for _, a := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"} {
		failOn(t, c, a, 5)
	}
	assert.Equal(t, 7, c.Stats().InRotation)
}

func TestOutlierFailurePercent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(4), Options{Outlier: &OutlierOptions{
			ConsecutiveFailures: -1, FailurePercent: 50, MinRequests: 10, Interval: time.Second, MaxEjectionPercent: 50,
		}})
		require.NoError(t, err)
		// Backend 1 fails every other request: never 5 in a row, but 50%.
		for i := range 400 {
			p, err := b.Pick(context.Background(), Request{})
			require.NoError(t, err)
			var rerr error
			if p.Addr() == "10.0.0.1:80" && i%8 < 4 {
				rerr = errBackend
			}
			p.Done(Result{Err: rerr, Latency: time.Millisecond})
			time.Sleep(10 * time.Millisecond)
		}
		s := b.Stats()
		assert.Equal(t, StateEjected, s.Backends[0].State)
		for _, bs := range s.Backends[1:] {
			assert.Equal(t, StateHealthy, bs.State, bs.Addr)
		}
	})
}

// Below the panic threshold the balancer uses every backend, and says so.
func TestPanicThreshold(t *testing.T) {
	var ev events
	b, err := New(RoundRobin{}, backends(4), Options{OnEvent: ev.add, PanicThreshold: 0.5})
	require.NoError(t, err)
	require.NoError(t, b.SetHealthy("10.0.0.1:80", false))
	assert.Len(t, pickN(t, b, 30), 3)
	require.NoError(t, b.SetHealthy("10.0.0.2:80", false)) // 2 of 4: not below 50%
	assert.Len(t, pickN(t, b, 30), 2)
	require.NoError(t, b.SetHealthy("10.0.0.3:80", false)) // 1 of 4
	s := b.Stats()
	assert.True(t, s.Panic)
	assert.Equal(t, 4, s.InRotation)
	assert.Len(t, pickN(t, b, 40), 4)
	require.NoError(t, b.SetHealthy("10.0.0.3:80", true))
	assert.False(t, b.Stats().Panic)
	var kinds []EventKind
	for _, e := range ev.all {
		if e.Kind == EventPanicEnter || e.Kind == EventPanicExit {
			kinds = append(kinds, e.Kind)
			assert.Contains(t, e.Reason, "of 4 backends healthy")
		}
	}
	assert.Equal(t, []EventKind{EventPanicEnter, EventPanicExit}, kinds)
}

// A backend that returns to rotation gets a growing share of traffic over
// the slow-start window instead of everything at once.
func TestSlowStartRampsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		b, err := New(RoundRobin{}, backends(4), Options{Rand: seeded(20).Rand, OnEvent: ev.add, SlowStart: &SlowStartOptions{Window: 10 * time.Second}})
		require.NoError(t, err)
		require.NoError(t, b.SetHealthy("10.0.0.4:80", false))
		require.NoError(t, b.SetHealthy("10.0.0.4:80", true))
		assert.Equal(t, StateSlowStart, b.Stats().Backends[3].State)
		share := func() float64 { return float64(pickN(t, b, 4000)["10.0.0.4:80"]) / 4000 }
		early := share()
		assert.InDelta(t, 0.1/3.1, early, 0.015, "10%% of a full share at first")
		time.Sleep(5 * time.Second)
		mid := share()
		assert.InDelta(t, 0.5/3.5, mid, 0.02)
		time.Sleep(5 * time.Second)
		assert.InDelta(t, 0.25, share(), 0.02, "full share after the window")
		assert.Equal(t, StateHealthy, b.Stats().Backends[3].State)
		assert.Equal(t, []string{
			"healthy→unhealthy (health check failed)", "unhealthy→slow-start (health check passed)", "slow-start→healthy (slow start complete)",
		}, ev.states("10.0.0.4:80"))
	})
}

// Aggression shapes the ramp, (elapsed/Window)^(1/Aggression), and the ramp
// runs from the moment the backend returned, not from the balancer's start.
func TestSlowStartAggression(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(4), Options{Rand: seeded(22).Rand,
			SlowStart: &SlowStartOptions{Window: 8 * time.Second, Aggression: 2}})
		require.NoError(t, err)
		time.Sleep(7 * time.Second)
		require.NoError(t, b.SetHealthy("10.0.0.4:80", false))
		require.NoError(t, b.SetHealthy("10.0.0.4:80", true))
		// Round robin offers the ramping backend one pick in four; it keeps
		// it with probability f, so its share is f/(3+f).
		share := func() float64 { return float64(pickN(t, b, 4000)["10.0.0.4:80"]) / 4000 }
		assert.InDelta(t, 0.1/3.1, share(), 0.015, "MinWeightPercent (10%%) at first")
		time.Sleep(2 * time.Second)
		assert.InDelta(t, 0.5/3.5, share(), 0.02, "a quarter of the window: (1/4)^(1/2) = half a share")
		time.Sleep(5 * time.Second)
		assert.Equal(t, StateSlowStart, b.Stats().Backends[3].State, "7/8 of the window")
		time.Sleep(time.Second)
		assert.InDelta(t, 0.25, share(), 0.02, "full share after the window")
		assert.Equal(t, StateHealthy, b.Stats().Backends[3].State)
	})
}

// Least-connections sends everything to an empty new backend; slow start
// tames that.
func TestSlowStartOnAddWithLeastConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(LeastConn{}, backends(3), Options{Rand: seeded(21).Rand, SlowStart: &SlowStartOptions{}})
		require.NoError(t, err)
		hold(t, b, 30) // 10 in flight each
		require.NoError(t, b.Add(Backend{Addr: "new", Weight: 1}))
		got := map[string]int{}
		for _, p := range hold(t, b, 30) {
			got[p.Addr()]++
		}
		assert.LessOrEqual(t, got["new"], 8, "10%% share at first; without slow start all 30 would go to the new backend: %v", got)
	})
}

// resultsOn reports n results to addr, the first fails of them failed.
func resultsOn(t *testing.T, b *Balancer, addr string, n, fails int) {
	t.Helper()
	reportOn(t, b, addr, fails, errBackend)
	reportOn(t, b, addr, n-fails, nil)
}

// failurePercentBalancer returns a balancer over two backends that ejects
// one when half or more of at least 4 requests fail within a second, and
// the events it emits.
func failurePercentBalancer(t *testing.T) (*Balancer, *events) {
	t.Helper()
	ev := &events{}
	b, err := New(RoundRobin{}, backends(2), Options{OnEvent: ev.add, Outlier: &OutlierOptions{
		ConsecutiveFailures: -1, FailurePercent: 50, MinRequests: 4, Interval: time.Second, MaxEjectionPercent: 50,
	}})
	require.NoError(t, err)
	return b, ev
}

// FailurePercent judges a window once it has lasted Interval, at the first
// result after that, naming the counts and the window's length.
func TestOutlierFailurePercentWindowEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, ev := failurePercentBalancer(t)
		bad := "10.0.0.1:80"
		resultsOn(t, b, bad, 3, 1)
		time.Sleep(time.Second - time.Nanosecond)
		resultsOn(t, b, bad, 1, 1) // 2 of 4, still within the window
		assert.Equal(t, StateHealthy, b.Stats().Backends[0].State, "the window has not ended")
		time.Sleep(time.Nanosecond)
		resultsOn(t, b, bad, 1, 0)
		assert.Equal(t, StateEjected, b.Stats().Backends[0].State)
		assert.Equal(t, []string{"healthy→ejected (2 of 4 requests failed in 1s)"}, ev.states(bad))
	})
}

// Each window is judged on its own results: the percentage and the minimum
// count are inclusive bounds, and a window's counts start from zero.
func TestOutlierFailurePercentJudgesEachWindow(t *testing.T) {
	for _, c := range []struct {
		name    string
		windows [][2]int // requests, failures
		reason  string   // of the ejection; empty: none
	}{
		{"at the percentage and the minimum", [][2]int{{4, 2}}, "2 of 4 requests failed in 1.5s"},
		{"below the percentage", [][2]int{{5, 2}}, ""},
		{"below the minimum", [][2]int{{3, 3}}, ""},
		{"every request failed", [][2]int{{7, 7}}, "7 of 7 requests failed in 1.5s"},
		{"a second window starts from zero", [][2]int{{4, 1}, {4, 2}}, "2 of 4 requests failed in 1.5s"},
		{"a window below the minimum is not topped up by the one before", [][2]int{{5, 1}, {3, 3}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, ev := failurePercentBalancer(t)
				bad := "10.0.0.1:80"
				// The first window runs from the balancer's start; each
				// later one from the result that ended the one before.
				time.Sleep(time.Second)
				for _, w := range c.windows {
					resultsOn(t, b, bad, w[0], w[1])
					time.Sleep(1500 * time.Millisecond)
				}
				resultsOn(t, b, bad, 1, 0)
				var want []string
				if c.reason != "" {
					want = []string{"healthy→ejected (" + c.reason + ")"}
				}
				assert.Equal(t, want, ev.states(bad))
			})
		})
	}
}

// A backend's ejection time grows with each ejection, and starts afresh
// once the backend has stayed in rotation for MaxEjectionTime past the
// end of its last ejection (the last one's length after it began).
func TestOutlierEjectionTimeStartsAfresh(t *testing.T) {
	for _, c := range []struct {
		name   string
		before int           // ejections before the one measured
		after  time.Duration // from the start of the last of them
		lasts  time.Duration
	}{
		{"second, within MaxEjectionTime of the first's end", 1, 330 * time.Second, 60 * time.Second},
		{"second, past it", 1, 330*time.Second + time.Nanosecond, 30 * time.Second},
		{"third, within MaxEjectionTime of the second's end", 2, 360 * time.Second, 90 * time.Second},
		{"third, past it", 2, 360*time.Second + time.Nanosecond, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := New(RoundRobin{}, backends(2), Options{Outlier: &OutlierOptions{
					ConsecutiveFailures: 1, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 50,
				}})
				require.NoError(t, err)
				bad := "10.0.0.1:80"
				time.Sleep(time.Hour) // the clock of a balancer that has run a while
				for i := 1; i <= c.before; i++ {
					failOn(t, b, bad, 1)
					if i < c.before {
						time.Sleep(time.Duration(i) * 30 * time.Second)
					}
				}
				time.Sleep(c.after)
				failOn(t, b, bad, 1)
				time.Sleep(c.lasts - time.Nanosecond)
				assert.Equal(t, StateEjected, b.Stats().Backends[0].State)
				time.Sleep(time.Nanosecond)
				assert.Equal(t, StateHealthy, b.Stats().Backends[0].State, "back after %v", c.lasts)
				assert.Equal(t, c.before+1, b.Stats().Backends[0].Ejections)
			})
		})
	}
}

// The ejection cap counts backends still ejected: one whose ejection ends
// at this very instant leaves room, even before a pick has put it back.
func TestOutlierEjectionCapCountsLiveEjections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(10), Options{Outlier: &OutlierOptions{ConsecutiveFailures: 1}})
		require.NoError(t, err)
		failOn(t, b, "10.0.0.1:80", 1) // ejected for 30s; the cap is one
		time.Sleep(30*time.Second - time.Nanosecond)
		var p Pick
		for p.Addr() != "10.0.0.2:80" {
			if p, err = b.Pick(context.Background(), Request{}); p.Addr() != "10.0.0.2:80" {
				require.NoError(t, err)
				p.Done(Result{})
			}
		}
		time.Sleep(time.Nanosecond)
		p.Done(Result{Err: errBackend})
		s := b.Stats()
		assert.Equal(t, StateHealthy, s.Backends[0].State)
		assert.Equal(t, StateEjected, s.Backends[1].State)
	})
}

// Of two ejected backends, each returns when its own ejection ends.
func TestOutlierEjectionsEndInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(4), Options{Outlier: &OutlierOptions{ConsecutiveFailures: 1, MaxEjectionPercent: 50}})
		require.NoError(t, err)
		failOn(t, b, "10.0.0.1:80", 1) // until 30s
		time.Sleep(10 * time.Second)
		failOn(t, b, "10.0.0.2:80", 1) // until 40s
		time.Sleep(20 * time.Second)
		s := b.Stats()
		assert.Equal(t, StateHealthy, s.Backends[0].State)
		assert.Equal(t, StateEjected, s.Backends[1].State)
		assert.Equal(t, 3, s.InRotation)
		time.Sleep(10 * time.Second)
		assert.Equal(t, 4, b.Stats().InRotation)
	})
}
