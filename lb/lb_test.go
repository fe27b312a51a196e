package lb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// algo is one implementation of Balancer, for the tables of tests and
// benchmarks that run over all of them.
type algo struct {
	name     string
	alg      Algorithm
	affinity bool // maps keys to backends
	coarse   bool // benchmarks: on a CoarseClock
}

// new returns a balancer of a's algorithm.
func (a algo) new(bs []Backend, o Options) (*Balancer, error) { return New(a.alg, bs, o) }

var algos = []algo{
	{name: "round-robin", alg: RoundRobin{}},
	{name: "smooth-weighted", alg: SmoothWeighted{}},
	{name: "edf", alg: EDF{}},
	{name: "random", alg: Random{}},
	{name: "weighted-random", alg: WeightedRandom{}},
	{name: "least-conn", alg: LeastConn{}},
	{name: "weighted-least-conn", alg: WeightedLeastConn{}},
	{name: "p2c", alg: P2C{}},
	{name: "peak-ewma", alg: PeakEWMA{}},
	{name: "ip-hash", alg: IPHash{}, affinity: true},
	{name: "ring-hash", alg: RingHash{}, affinity: true},
	{name: "maglev", alg: Maglev{}, affinity: true},
	{name: "geo", alg: Geo{}},
}

func backends(n int) []Backend {
	out := make([]Backend, n)
	for i := range out {
		out[i] = Backend{Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1}
	}
	return out
}

func seeded(seed uint64) Options { return Options{Rand: rand.New(rand.NewPCG(seed, 1))} }

// pickN picks n times (with a distinct key each time, for the hash
// algorithms), finishing every pick at once, and counts the picks per
// address.
func pickN(t testing.TB, b *Balancer, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		p, err := b.Pick(context.Background(), Request{Key: fmt.Sprintf("client-%d", i)})
		require.NoError(t, err)
		got[p.Addr()]++
		p.Done(Result{Latency: time.Millisecond})
	}
	return got
}

// Every algorithm spreads keyless or varied traffic over every backend, and
// only over backends in rotation.
func TestEveryAlgorithmHonoursRotation(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new(backends(4), seeded(1))
			require.NoError(t, err)
			got := pickN(t, b, 400)
			assert.Len(t, got, 4, "every backend gets traffic: %v", got)

			require.NoError(t, b.SetHealthy("10.0.0.2:80", false))
			require.NoError(t, b.Drain("10.0.0.3:80"))
			got = pickN(t, b, 400)
			assert.Equal(t, 0, got["10.0.0.2:80"], "unhealthy backend picked")
			assert.Equal(t, 0, got["10.0.0.3:80"], "draining backend picked")
			assert.Positive(t, got["10.0.0.1:80"])
			assert.Positive(t, got["10.0.0.4:80"])

			require.NoError(t, b.SetHealthy("10.0.0.2:80", true))
			require.NoError(t, b.Remove("10.0.0.3:80"))
			require.NoError(t, b.Add(Backend{Addr: "10.0.0.9:80", Weight: 1}))
			got = pickN(t, b, 400)
			assert.Len(t, got, 4, "%v", got)
			assert.Positive(t, got["10.0.0.9:80"], "added backend gets traffic")
			assert.Equal(t, 0, got["10.0.0.3:80"], "removed backend picked")

			s := b.Stats()
			require.Len(t, s.Backends, 4)
			assert.Equal(t, 4, s.InRotation)
			var total uint64
			for _, bs := range s.Backends {
				assert.Zero(t, bs.InFlight, "%s: every pick was done", bs.Addr)
				total += bs.Requests
			}
			// 800 picks on backends that stayed, plus the 400 of the last
			// round on the added one; the removed backend's are gone.
			assert.Greater(t, total, uint64(800))
		})
	}
}

// The counters really move with traffic: in-flight rises on Pick and falls
// on Done, failures and latency are recorded.
func TestStatsMoveWithTraffic(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new(backends(1), Options{})
			require.NoError(t, err)
			var picks []Pick
			for range 3 {
				p, err := b.Pick(context.Background(), Request{Key: "k"})
				require.NoError(t, err)
				picks = append(picks, p)
			}
			bs := b.Stats().Backends[0]
			assert.Equal(t, int64(3), bs.InFlight)
			assert.Equal(t, uint64(3), bs.Requests)
			picks[0].Done(Result{Latency: 40 * time.Millisecond})
			picks[1].Done(Result{Err: errors.New("boom"), Latency: 10 * time.Millisecond})
			bs = b.Stats().Backends[0]
			assert.Equal(t, int64(1), bs.InFlight)
			assert.Equal(t, uint64(1), bs.Failures)
			want := 37 * time.Millisecond // 40, then 10% of the way to 10
			if a.name == "peak-ewma" {
				want = 40 * time.Millisecond // the peak is kept
			}
			assert.InDelta(t, float64(want), float64(bs.Latency), float64(time.Millisecond))
			picks[2].Done(Result{})
			assert.Zero(t, b.Stats().Backends[0].InFlight)
		})
	}
}

// No backend in rotation: ErrNoHealthyBackend, not a panic, with panic mode
// disabled; with it enabled, the unhealthy backends serve.
func TestNoHealthyBackend(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new(backends(2), Options{DisablePanic: true})
			require.NoError(t, err)
			require.NoError(t, b.SetHealthy("10.0.0.1:80", false))
			require.NoError(t, b.SetHealthy("10.0.0.2:80", false))
			_, err = b.Pick(context.Background(), Request{Key: "x"})
			assert.ErrorIs(t, err, ErrNoHealthyBackend)

			p, err := a.new(backends(2), Options{})
			require.NoError(t, err)
			require.NoError(t, p.SetHealthy("10.0.0.1:80", false))
			require.NoError(t, p.SetHealthy("10.0.0.2:80", false))
			assert.True(t, p.Stats().Panic)
			pk, err := p.Pick(context.Background(), Request{Key: "x"})
			require.NoError(t, err, "panic mode spreads over every backend")
			pk.Done(Result{})

			require.NoError(t, b.Remove("10.0.0.1:80"))
			require.NoError(t, b.Remove("10.0.0.2:80"))
			_, err = b.Pick(context.Background(), Request{})
			assert.ErrorIs(t, err, ErrNoHealthyBackend)
			assert.ErrorIs(t, b.Remove("10.0.0.2:80"), ErrUnknownBackend)
		})
	}
}

func TestPickHonoursContext(t *testing.T) {
	b, err := New(RoundRobin{}, backends(2), Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.Pick(ctx, Request{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, b.Stats().Backends[0].Requests+b.Stats().Backends[1].Requests)
}

// Picking allocates nothing, for every algorithm, also with keys, avoid
// lists and capacities.
func TestPickAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			bs := backends(10)
			bs[3].Capacity = 1000
			for i := range bs {
				bs[i].Zone = fmt.Sprintf("z%d", i%3)
			}
			b, err := a.new(bs, Options{})
			require.NoError(t, err)
			req := Request{Key: "192.0.2.7", Zone: "z1", Avoid: []string{"10.0.0.1:80"}}
			allocs := testing.AllocsPerRun(200, func() {
				p, err := b.Pick(context.Background(), req)
				if err != nil {
					panic(err)
				}
				p.Done(Result{Latency: time.Millisecond})
			})
			assert.Zero(t, allocs)
		})
	}
}

// Concurrent picks, results and backend changes: run with -race.
func TestConcurrentPicksAndChanges(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new(backends(5), Options{Outlier: &OutlierOptions{}, SlowStart: &SlowStartOptions{}})
			require.NoError(t, err)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 300 {
						p, err := b.Pick(context.Background(), Request{Key: fmt.Sprint(g, i)})
						if err != nil {
							continue
						}
						var rerr error
						if i%7 == 0 {
							rerr = errors.New("fail")
						}
						p.Done(Result{Err: rerr, Latency: time.Duration(i) * time.Microsecond})
					}
				})
			}
			wg.Go(func() {
				for i := range 50 {
					addr := fmt.Sprintf("10.0.0.%d:80", 1+i%5)
					_ = b.SetWeight(addr, float64(1+i%3))
					_ = b.SetHealthy(addr, i%2 == 0)
					_ = b.Update(backends(5 + i%2))
					_ = b.Stats()
				}
			})
			wg.Wait()
			for _, s := range b.Stats().Backends {
				assert.Zero(t, s.InFlight, s.Addr)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name     string
		backends []Backend
		opts     Options
		want     error
		msg      string
	}{
		{"no backends", nil, Options{}, ErrNoBackends, "at least one backend"},
		{"duplicate", []Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 1}, {Addr: "a", Weight: 1}}, Options{}, ErrDuplicateBackend, `"a"`},
		{"empty address", []Backend{{Addr: "", Weight: 1}}, Options{}, ErrInvalidConfig, "empty address"},
		{"zero weight", []Backend{{Addr: "a"}}, Options{}, ErrInvalidWeight, `"a" has weight 0`},
		{"negative weight", []Backend{{Addr: "a", Weight: -1}}, Options{}, ErrInvalidWeight, "weight -1"},
		{"NaN weight", []Backend{{Addr: "a", Weight: nan}}, Options{}, ErrInvalidWeight, "NaN"},
		{"infinite weight", []Backend{{Addr: "a", Weight: math.Inf(1)}}, Options{}, ErrInvalidWeight, "+Inf"},
		{"NaN coordinates", []Backend{{Addr: "a", Weight: 1, Coord: &Coord{Lat: nan}}}, Options{}, ErrInvalidCoord, "NaN"},
		{"latitude out of range", []Backend{{Addr: "a", Weight: 1, Coord: &Coord{Lat: 91}}}, Options{}, ErrInvalidCoord, "91"},
		{"negative capacity", []Backend{{Addr: "a", Capacity: -2, Weight: 1}}, Options{}, ErrInvalidConfig, "capacity -2"},
		{"panic threshold", backends(1), Options{PanicThreshold: 1.5}, ErrInvalidConfig, "1.5"},
		{"negative drain timeout", backends(1), Options{DrainTimeout: -time.Second}, ErrInvalidConfig, "-1s"},
		{"slow-start window", backends(1), Options{SlowStart: &SlowStartOptions{Window: -1}}, ErrInvalidConfig, "slow-start window"},
		{"slow-start min weight", backends(1), Options{SlowStart: &SlowStartOptions{MinWeightPercent: 101}}, ErrInvalidConfig, "101"},
		{"outlier percent", backends(1), Options{Outlier: &OutlierOptions{FailurePercent: nan}}, ErrInvalidConfig, "NaN"},
		{"outlier max below base", backends(1), Options{Outlier: &OutlierOptions{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second}}, ErrInvalidConfig, "below the base"},
	}
	for _, a := range algos {
		for _, tc := range cases {
			t.Run(a.name+"/"+tc.name, func(t *testing.T) {
				b, err := a.new(tc.backends, tc.opts)
				require.Error(t, err)
				assert.Nil(t, b)
				assert.ErrorIs(t, err, tc.want)
				assert.ErrorIs(t, err, ErrInvalidConfig)
				assert.Contains(t, err.Error(), tc.msg)
				assert.Regexp(t, "^lb: ", err.Error())
			})
		}
		t.Run(a.name+"/runtime changes", func(t *testing.T) {
			b, err := a.new(backends(2), Options{})
			require.NoError(t, err)
			assert.ErrorIs(t, b.Add(Backend{Addr: "10.0.0.1:80", Weight: 1}), ErrDuplicateBackend)
			assert.ErrorIs(t, b.Add(Backend{Addr: "x", Weight: -3}), ErrInvalidWeight)
			assert.ErrorIs(t, b.SetWeight("10.0.0.1:80", 0), ErrInvalidWeight)
			assert.ErrorIs(t, b.SetWeight("10.0.0.1:80", nan), ErrInvalidWeight)
			assert.ErrorIs(t, b.SetWeight("nope", 2), ErrUnknownBackend)
			assert.ErrorIs(t, b.Drain("nope"), ErrUnknownBackend)
			assert.ErrorIs(t, b.SetHealthy("nope", true), ErrUnknownBackend)
			assert.ErrorIs(t, b.Update(nil), ErrNoBackends)
			assert.ErrorIs(t, b.Update([]Backend{{Addr: "a", Weight: 1}, {Addr: "a", Weight: 1}}), ErrDuplicateBackend)
			assert.Len(t, b.Backends(), 2, "failed changes change nothing")
		})
	}
}

func TestMaglevTableSizeMustBePrime(t *testing.T) {
	_, err := New(Maglev{TableSize: 100}, backends(3), Options{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "100")
}

// Each algorithm checks its own settings.
func TestAlgorithmSettings(t *testing.T) {
	for _, tc := range []struct {
		alg Algorithm
		msg string
	}{
		{PeakEWMA{Decay: -time.Second}, "-1s"},
		{RingHash{VirtualNodes: -1}, "virtual nodes -1"},
		{Maglev{TableSize: -7}, "table size -7"},
		{Geo{ZoneLatency: map[string]map[string]time.Duration{"a": {"b": -1}}}, `"a"→"b"`},
		{nil, "algorithm"},
	} {
		b, err := New(tc.alg, backends(3), Options{})
		assert.Nil(t, b)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%T", tc.alg)
		assert.ErrorContains(t, err, tc.msg)
		assert.Regexp(t, "^lb: ", err.Error())
	}
}

// Geo copies its latency table: the caller may change or reuse the map.
func TestGeoCopiesItsTable(t *testing.T) {
	table := map[string]map[string]time.Duration{"eu": {"us": time.Millisecond, "eu": time.Second}}
	b, err := New(Geo{ZoneLatency: table}, geoBackends(), Options{})
	require.NoError(t, err)
	table["eu"]["us"] = time.Hour
	table["eu"]["eu"] = 0
	require.NoError(t, b.SetHealthy("ap-1", false)) // a rebuild reads the table again
	assert.Contains(t, addrsOf(t, b, 1, Request{Zone: "eu"})[0], "us-")
}

// Update keeps the counters of backends that stay and replaces the rest.
func TestUpdateKeepsSurvivors(t *testing.T) {
	var events []Event
	b, err := New(P2C{}, backends(3), Options{OnEvent: func(e Event) { events = append(events, e) }})
	require.NoError(t, err)
	pickN(t, b, 30)
	before := b.Stats().Backends[1].Requests
	require.NoError(t, b.Update([]Backend{{Addr: "10.0.0.2:80", Weight: 3}, {Addr: "10.0.0.7:80", Weight: 1}}))
	s := b.Stats()
	require.Len(t, s.Backends, 2)
	assert.Equal(t, "10.0.0.2:80", s.Backends[0].Addr)
	assert.Equal(t, before, s.Backends[0].Requests)
	assert.Equal(t, 3.0, s.Backends[0].Weight)
	assert.Equal(t, []Backend{{Addr: "10.0.0.2:80", Weight: 3}, {Addr: "10.0.0.7:80", Weight: 1}}, b.Backends())
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind.String()+" "+e.Addr)
	}
	assert.ElementsMatch(t, []string{"removed 10.0.0.1:80", "removed 10.0.0.3:80", "added 10.0.0.7:80"}, kinds)
}

// A backend whose coordinates an update leaves alone keeps its counters;
// one whose coordinates move is replaced.
func TestUpdateComparesCoordinates(t *testing.T) {
	here, there := &Coord{Lat: 48.1, Lon: 11.6}, &Coord{Lat: 40.4, Lon: -3.7}
	b, err := New(Geo{}, []Backend{{Addr: "a", Weight: 1, Coord: here}, {Addr: "b", Weight: 1, Coord: here}}, Options{})
	require.NoError(t, err)
	pickN(t, b, 20)
	before := b.Stats().Backends
	require.Positive(t, before[0].Requests)
	require.Positive(t, before[1].Requests)
	require.NoError(t, b.Update([]Backend{{Addr: "a", Weight: 2, Coord: &Coord{Lat: 48.1, Lon: 11.6}}, {Addr: "b", Weight: 1, Coord: there}}))
	after := b.Stats().Backends
	assert.Equal(t, before[0].Requests, after[0].Requests, "same place: kept")
	assert.Equal(t, 2.0, after[0].Weight)
	assert.Zero(t, after[1].Requests, "moved: replaced")
}

// Drained backends finish the requests they have.
func TestDrainLetsInFlightFinish(t *testing.T) {
	b, err := New(RoundRobin{}, backends(2), Options{})
	require.NoError(t, err)
	var held []Pick
	for range 4 {
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		held = append(held, p)
	}
	require.NoError(t, b.Drain("10.0.0.1:80"))
	s := b.Stats()
	assert.Equal(t, StateDraining, s.Backends[0].State)
	assert.Equal(t, int64(2), s.Backends[0].InFlight)
	for _, p := range held {
		p.Done(Result{})
	}
	assert.Zero(t, b.Stats().Backends[0].InFlight)
	assert.Equal(t, map[string]int{"10.0.0.2:80": 10}, pickN(t, b, 10))
}

// The hot counters of a backend sit on their own cache line, away from the
// read-mostly fields and from the latency state, so picks on one backend do
// not slow down reads of another's configuration.
func TestHotCountersHaveTheirOwnCacheLine(t *testing.T) {
	var e endpoint
	const line = 64
	start := unsafe.Offsetof(e.requests)
	end := unsafe.Offsetof(e.failures) + unsafe.Sizeof(e.failures)
	assert.GreaterOrEqual(t, start-(unsafe.Offsetof(e.weight)+unsafe.Sizeof(e.weight)), uintptr(line), "padding before")
	assert.GreaterOrEqual(t, unsafe.Offsetof(e.ewma)-start, uintptr(line), "padding after")
	assert.LessOrEqual(t, end-start, uintptr(line))
}

// With DisableStats a pick keeps no per-backend request, in-flight or
// latency figures, while failures are still counted and still eject.
func TestDisableStats(t *testing.T) {
	b, err := New(RoundRobin{}, backends(2), Options{DisableStats: true, Outlier: &OutlierOptions{ConsecutiveFailures: 3}})
	require.NoError(t, err)
	held := hold(t, b, 4)
	for _, s := range b.Stats().Backends {
		assert.Zero(t, s.InFlight, s.Addr)
		assert.Zero(t, s.Requests, s.Addr)
	}
	for _, p := range held {
		p.Done(Result{Latency: time.Millisecond})
	}
	assert.Zero(t, b.Stats().Backends[0].Latency)
	failOn(t, b, "10.0.0.1:80", 3)
	s := b.Stats()
	assert.Equal(t, uint64(3), s.Backends[0].Failures)
	assert.Equal(t, StateEjected, s.Backends[0].State)
	assert.Equal(t, map[string]int{"10.0.0.2:80": 6}, pickN(t, b, 6))

	// Without outlier detection too, a failure is counted and a success
	// is not.
	quiet, err := New(RoundRobin{}, backends(1), Options{DisableStats: true})
	require.NoError(t, err)
	for _, r := range []Result{{Err: errBackend}, {}, {Err: errBackend}, {}} {
		p, err := quiet.Pick(context.Background(), Request{})
		require.NoError(t, err)
		p.Done(r)
	}
	assert.Equal(t, uint64(2), quiet.Stats().Backends[0].Failures)
}

// States and event kinds print as their names; a value out of range
// prints "unknown" rather than panicking.
func TestStateAndEventKindNames(t *testing.T) {
	var states, kinds []string
	for s := range State(6) {
		states = append(states, s.String())
	}
	for k := range EventKind(6) {
		kinds = append(kinds, k.String())
	}
	assert.Equal(t, []string{"healthy", "slow-start", "unhealthy", "ejected", "draining", "unknown"}, states)
	assert.Equal(t, []string{"state-change", "added", "removed", "panic-enter", "panic-exit", "unknown"}, kinds)
	assert.Equal(t, "unknown", State(255).String())
}

// Algorithms that pick by load, and capacities, need the counters that
// DisableStats turns off: asking for both is a configuration error.
func TestDisableStatsRejectsWhatNeedsCounters(t *testing.T) {
	for _, a := range algos {
		_, err := a.new(backends(2), Options{DisableStats: true})
		switch a.name {
		case "least-conn", "weighted-least-conn", "p2c", "peak-ewma", "geo":
			assert.ErrorIs(t, err, ErrInvalidConfig, a.name)
			assert.ErrorContains(t, err, "DisableStats", a.name)
		default:
			require.NoError(t, err, a.name)
		}
	}
	capped := backends(2)
	capped[1].Capacity = 5
	_, err := New(RoundRobin{}, capped, Options{DisableStats: true})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, `"10.0.0.2:80" has capacity 5`)

	b, err := New(Random{}, backends(2), Options{DisableStats: true})
	require.NoError(t, err)
	assert.ErrorIs(t, b.Add(Backend{Addr: "c", Weight: 1, Capacity: 1}), ErrInvalidConfig)
	assert.ErrorIs(t, b.Update([]Backend{{Addr: "c", Weight: 1, Capacity: 1}}), ErrInvalidConfig)
	assert.Len(t, b.Backends(), 2, "a rejected change leaves the set as it was")
}

// In-flight counts stay exact under concurrent picks: after every pick is
// Done, every backend is back to zero.
func TestInFlightReturnsToZeroUnderConcurrency(t *testing.T) {
	b, err := New(P2C{}, backends(5), Options{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				p, err := b.Pick(context.Background(), Request{})
				if err != nil {
					t.Error(err)
					return
				}
				p.Done(Result{})
			}
		})
	}
	wg.Wait()
	var total uint64
	for _, s := range b.Stats().Backends {
		assert.Zero(t, s.InFlight, s.Addr)
		total += s.Requests
	}
	assert.Equal(t, uint64(8*500), total)
}
