package lb

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func addrsOf(t *testing.T, b *Balancer, n int, req Request) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		p, err := b.Pick(context.Background(), req)
		require.NoError(t, err)
		out[i] = p.Addr()
		p.Done(Result{})
	}
	return out
}

func TestRoundRobinCycles(t *testing.T) {
	b, err := New(RoundRobin{}, backends(3), Options{})
	require.NoError(t, err)
	got := addrsOf(t, b, 9, Request{})
	for i := 3; i < 9; i++ {
		assert.Equal(t, got[i-3], got[i], "period 3")
	}
	assert.ElementsMatch(t, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}, got[:3])
}

// nginx's smooth weighted round robin: weights 5, 1, 1 give a a b a c a a.
func TestSmoothWeightedInterleaves(t *testing.T) {
	b, err := New(SmoothWeighted{}, []Backend{{Addr: "a", Weight: 5}, {Addr: "b", Weight: 1}, {Addr: "c", Weight: 1}}, Options{})
	require.NoError(t, err)
	assert.Equal(t, "a a b a c a a a a b a c a a", strings.Join(addrsOf(t, b, 14, Request{}), " "))
	// A weight change applies at once.
	require.NoError(t, b.SetWeight("a", 1))
	got := addrsOf(t, b, 3, Request{})
	assert.ElementsMatch(t, []string{"a", "b", "c"}, got)
}

// EDF's schedule: a backend's next deadline is 1/weight after its last, the
// earliest goes first, and a tie goes to the entry scheduled first (here
// weights 1, 3 and 1.5 tie at every multiple of 1/3 that two of them
// reach); the seed only sets how many picks the schedule skips at first.
func TestEDFSchedule(t *testing.T) {
	b, err := New(EDF{}, []Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 3}, {Addr: "c", Weight: 1.5}}, seeded(3))
	require.NoError(t, err)
	assert.Equal(t, "b c b a b c b b b a c b c b a b c b b c a b", strings.Join(addrsOf(t, b, 22, Request{}), " "))
}

func TestEDFHonoursWeights(t *testing.T) {
	b, err := New(EDF{}, []Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 2}, {Addr: "c", Weight: 3}}, seeded(3))
	require.NoError(t, err)
	counts := map[string]int{}
	seq := addrsOf(t, b, 600, Request{})
	for _, a := range seq {
		counts[a]++
	}
	assert.InDelta(t, 100, counts["a"], 1)
	assert.InDelta(t, 200, counts["b"], 1)
	assert.InDelta(t, 300, counts["c"], 1)
	// No bursts: c (half the weight) never gets more than 3 in a row.
	run := 0
	for _, a := range seq {
		if a == "c" {
			run++
			assert.LessOrEqual(t, run, 3)
		} else {
			run = 0
		}
	}
	require.NoError(t, b.SetWeight("a", 3))
	counts = map[string]int{}
	for _, a := range addrsOf(t, b, 800, Request{}) {
		counts[a]++
	}
	assert.InDelta(t, 300, counts["a"], 1)
	assert.InDelta(t, 200, counts["b"], 1)
}

func TestWeightedRandomHonoursWeights(t *testing.T) {
	b, err := New(WeightedRandom{}, []Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 4}}, seeded(4))
	require.NoError(t, err)
	counts := map[string]int{}
	for _, a := range addrsOf(t, b, 20000, Request{}) {
		counts[a]++
	}
	assert.InDelta(t, 0.8, float64(counts["b"])/20000, 0.01)
	r, err := New(Random{}, backends(4), seeded(5))
	require.NoError(t, err)
	counts = map[string]int{}
	for _, a := range addrsOf(t, r, 20000, Request{}) {
		counts[a]++
	}
	for a, c := range counts {
		assert.InDelta(t, 0.25, float64(c)/20000, 0.015, a)
	}
}

// hold picks n times without finishing and returns the picks.
func hold(t *testing.T, b *Balancer, n int) []Pick {
	t.Helper()
	var out []Pick
	for range n {
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

func TestLeastConnPicksFewestInFlight(t *testing.T) {
	b, err := New(LeastConn{}, backends(3), seeded(6))
	require.NoError(t, err)
	held := hold(t, b, 6)
	for _, s := range b.Stats().Backends {
		assert.Equal(t, int64(2), s.InFlight, "exact least connections levels the in-flight counts")
	}
	// Finish both requests of one backend: it gets the next two.
	var freed string
	for _, p := range held {
		if p.Addr() == held[0].Addr() {
			p.Done(Result{})
			freed = p.Addr()
		}
	}
	assert.Equal(t, []string{freed, freed}, func() []string {
		ps := hold(t, b, 2)
		return []string{ps[0].Addr(), ps[1].Addr()}
	}())
}

// Ties are broken uniformly at random, wherever the tied backends lie in
// the list: here the three idle backends of ten are neighbours, which a
// scan from a random start, keeping the first minimum it meets, would
// share 8:1:1.
func TestLeastConnBreaksTiesEvenly(t *testing.T) {
	for _, algo := range []Algorithm{LeastConn{}, WeightedLeastConn{}} {
		t.Run(fmt.Sprintf("%T", algo), func(t *testing.T) {
			b, err := New(algo, backends(10), seeded(8))
			require.NoError(t, err)
			idle := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}
			for _, p := range hold(t, b, 10) {
				if slices.Contains(idle, p.Addr()) {
					p.Done(Result{})
				}
			}
			got := pickN(t, b, 6000)
			assert.Len(t, got, 3, "only the idle backends: %v", got)
			for _, a := range idle {
				assert.InDelta(t, 2000, got[a], 150, "%v", got)
			}
		})
	}
}

// As many ties as a pick remembers (128), and more, are shared evenly too.
func TestLeastConnBreaksManyTiesEvenly(t *testing.T) {
	for _, n := range []int{tieBuf, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bs := make([]Backend, n)
			for i := range bs {
				bs[i] = Backend{Addr: fmt.Sprint(i), Weight: 1}
			}
			b, err := New(LeastConn{}, bs, seeded(9))
			require.NoError(t, err)
			got := pickN(t, b, 300*n)
			require.Len(t, got, n)
			first := 0
			for i := range tieBuf {
				first += got[fmt.Sprint(i)]
			}
			assert.InDelta(t, float64(tieBuf)/float64(n), float64(first)/float64(300*n), 0.012, "the first %d backends' share", tieBuf)
			for a, c := range got {
				assert.InDelta(t, 300, c, 90, a)
			}
		})
	}
}

func TestWeightedLeastConnKeepsRatio(t *testing.T) {
	b, err := New(WeightedLeastConn{}, []Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 3}}, seeded(7))
	require.NoError(t, err)
	hold(t, b, 40)
	s := b.Stats().Backends
	assert.InDelta(t, 10, s[0].InFlight, 1)
	assert.InDelta(t, 30, s[1].InFlight, 1)
}

func TestP2CAvoidsTheLoadedBackend(t *testing.T) {
	b, err := New(P2C{}, backends(2), seeded(8))
	require.NoError(t, err)
	held := hold(t, b, 1)
	// With two backends both are always compared: the idle one wins.
	for range 5 {
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		assert.NotEqual(t, held[0].Addr(), p.Addr())
		p.Done(Result{})
	}
	// Over many backends, a heavily loaded one is picked only when both
	// choices are loaded at least as much; here never.
	b, err = New(P2C{}, backends(10), seeded(9))
	require.NoError(t, err)
	hot := hold(t, b, 1)[0]
	for range 20 {
		hot2, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		if hot2.Addr() != hot.Addr() {
			hot2.Done(Result{})
		}
	}
	got := pickN(t, b, 1000)
	assert.Zero(t, got[hot.Addr()], "%v", got)
}

// Peak EWMA moves traffic away from a backend whose latency rises, within
// one observation, and back as it recovers.
func TestPeakEWMAFollowsLatency(t *testing.T) {
	now := time.Unix(0, 0)
	b, err := New(PeakEWMA{Decay: time.Second}, backends(3), Options{Now: func() time.Time { return now }, Rand: seeded(10).Rand})
	require.NoError(t, err)
	lat := map[string]time.Duration{"10.0.0.1:80": 10 * time.Millisecond, "10.0.0.2:80": 10 * time.Millisecond, "10.0.0.3:80": 500 * time.Millisecond}
	run := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			p, err := b.Pick(context.Background(), Request{})
			require.NoError(t, err)
			got[p.Addr()]++
			now = now.Add(lat[p.Addr()]) // one request at a time
			p.Done(Result{Latency: lat[p.Addr()]})
		}
		return got
	}
	got := run(3000)
	assert.Less(t, got["10.0.0.3:80"], 60, "slow backend starved: %v", got)
	lat["10.0.0.3:80"] = 10 * time.Millisecond
	now = now.Add(20 * time.Second) // the peak decays away
	got = run(3000)
	assert.Greater(t, got["10.0.0.3:80"], 700, "recovered backend wins traffic back: %v", got)
	assert.InDelta(t, float64(10*time.Millisecond), float64(b.Stats().Backends[2].Latency), float64(2*time.Millisecond))
}

// A backend that was never measured takes one request at a time.
// Stats show the peak EWMA as of the last report: a slower report replaces
// it, a faster one pulls it down with the weight of the time since the
// last report (e^-0.3 after 300 ms with a 1 s Decay), counted to the
// request's end (its start plus the latency it reports). A request that
// reports no latency is timed from Pick to Done; one that took no time on
// the clock measured nothing.
func TestPeakEWMALatencyFigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(PeakEWMA{Decay: time.Second}, backends(1), Options{})
		require.NoError(t, err)
		latency := func() time.Duration { return b.Stats().Backends[0].Latency }
		first := hold(t, b, 1)[0]
		first.Done(Result{Latency: time.Second}) // ended at 1 s
		assert.Equal(t, time.Second, latency())
		time.Sleep(500 * time.Millisecond)
		second := hold(t, b, 1)[0]
		second.Done(Result{Latency: 800 * time.Millisecond}) // ended at 1.3 s
		w := math.Exp(-0.3)
		want := float64(time.Second)*w + float64(800*time.Millisecond)*(1-w)
		assert.InDelta(t, want, float64(latency()), float64(time.Millisecond))
		time.Sleep(time.Second)
		third := hold(t, b, 1)[0]
		third.Done(Result{})
		assert.InDelta(t, want, float64(latency()), float64(time.Millisecond), "0 on the clock is no measurement")
		fourth := hold(t, b, 1)[0]
		time.Sleep(1500 * time.Millisecond)
		fourth.Done(Result{})
		assert.Equal(t, 1500*time.Millisecond, latency(), "timed from Pick to Done when not reported")
	})
}

// Over a gap short against Decay (a few milliseconds against seconds, as
// at high request rates) a faster report pulls the peak EWMA down with the
// weight e^-gap/Decay, as over a long one.
func TestPeakEWMAShortGapWeight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// With a Decay of 4096 × 2^17 ns the balancer's decay steps are
		// 2^17 ns, so that these gaps are whole steps.
		const step = time.Duration(1 << 17)
		b, err := New(PeakEWMA{Decay: 4096 * step}, backends(1), Options{})
		require.NoError(t, err)
		hold(t, b, 1)[0].Done(Result{Latency: 1000 * step}) // ended at 1000 steps
		time.Sleep(1000 * step)
		hold(t, b, 1)[0].Done(Result{Latency: 24 * step}) // ended at 1024 steps
		w := math.Exp(-24.0 / 4096)
		want := float64(1000*step)*w + float64(24*step)*(1-w)
		assert.InDelta(t, want, float64(b.Stats().Backends[0].Latency), 20)
	})
}

// The other algorithms keep a plain moving average of the latencies
// reported, each weighing a tenth; a result without one leaves it as it is.
func TestLatencyAverageIgnoresUnmeasured(t *testing.T) {
	b, err := New(RoundRobin{}, backends(1), Options{})
	require.NoError(t, err)
	report := func(r Result) time.Duration {
		hold(t, b, 1)[0].Done(r)
		return b.Stats().Backends[0].Latency
	}
	assert.Equal(t, 10*time.Millisecond, report(Result{Latency: 10 * time.Millisecond}))
	assert.Equal(t, 10*time.Millisecond, report(Result{}))
	assert.Equal(t, 10*time.Millisecond, report(Result{Err: errBackend}))
	assert.Equal(t, 11*time.Millisecond, report(Result{Latency: 20 * time.Millisecond}))
}

func TestPeakEWMAProbesNewBackendsOneAtATime(t *testing.T) {
	b, err := New(PeakEWMA{}, backends(2), seeded(11))
	require.NoError(t, err)
	p, err := b.Pick(context.Background(), Request{})
	require.NoError(t, err)
	other := hold(t, b, 1)[0]
	assert.NotEqual(t, p.Addr(), other.Addr())
}

func TestIPHashGroupsSubnets(t *testing.T) {
	b, err := New(IPHash{}, backends(8), Options{})
	require.NoError(t, err)
	one := addrsOf(t, b, 1, Request{Key: "203.0.113.7"})[0]
	for _, ip := range []string{"203.0.113.1", "203.0.113.250", "203.0.113.9:5555", "::ffff:203.0.113.77"} {
		assert.Equal(t, one, addrsOf(t, b, 1, Request{Key: ip})[0], ip)
	}
	// Clients from different /24s spread out; a removal remaps most.
	before := map[string]string{}
	for i := range 256 {
		ip := fmt.Sprintf("198.%d.%d.1", i/16, i)
		before[ip] = addrsOf(t, b, 1, Request{Key: ip})[0]
	}
	require.NoError(t, b.Remove("10.0.0.8:80"))
	moved := 0
	for ip, a := range before {
		if addrsOf(t, b, 1, Request{Key: ip})[0] != a {
			moved++
		}
	}
	assert.Greater(t, moved, 256/2, "modulo hashing remaps most clients")
}

// Consistent hashing moves only the keys of a backend that leaves rotation
// (unhealthy here), and moves them back when it returns.
func TestConsistentHashMovesOnlyTheLeaversKeys(t *testing.T) {
	for _, a := range algos {
		if a.name != "ring-hash" && a.name != "maglev" {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new(backends(10), Options{})
			require.NoError(t, err)
			const keys = 5000
			before := make([]string, keys)
			for i := range before {
				before[i] = addrsOf(t, b, 1, Request{Key: fmt.Sprint("user-", i)})[0]
			}
			require.NoError(t, b.SetHealthy("10.0.0.4:80", false))
			moved, wrong := 0, 0
			for i := range before {
				now := addrsOf(t, b, 1, Request{Key: fmt.Sprint("user-", i)})[0]
				if now != before[i] {
					moved++
					if before[i] != "10.0.0.4:80" {
						wrong++
					}
				}
			}
			assert.InDelta(t, keys/10, moved, keys/20, "about 1/n of the keys move")
			assert.LessOrEqual(t, wrong, keys/50, "keys of other backends stay (Maglev moves a few)")
			require.NoError(t, b.SetHealthy("10.0.0.4:80", true))
			for i := range before {
				require.Equal(t, before[i], addrsOf(t, b, 1, Request{Key: fmt.Sprint("user-", i)})[0])
			}
		})
	}
}

var (
	london    = &Coord{Lat: 51.5, Lon: -0.1}
	frankfurt = &Coord{Lat: 50.1, Lon: 8.7}
	virginia  = &Coord{Lat: 38.9, Lon: -77.4}
	tokyo     = &Coord{Lat: 35.7, Lon: 139.7}
)

func geoBackends() []Backend {
	return []Backend{
		{Addr: "eu-1", Zone: "eu", Coord: frankfurt, Weight: 1},
		{Addr: "eu-2", Zone: "eu", Coord: frankfurt, Weight: 1},
		{Addr: "us-1", Zone: "us", Coord: virginia, Weight: 1},
		{Addr: "ap-1", Zone: "ap", Coord: tokyo, Weight: 1},
	}
}

func TestGeoRoutesToNearestAndSpillsOver(t *testing.T) {
	b, err := New(Geo{}, geoBackends(), seeded(12))
	require.NoError(t, err)
	zoneOf := func(req Request) string {
		return strings.SplitN(addrsOf(t, b, 1, req)[0], "-", 2)[0]
	}
	for range 20 {
		assert.Equal(t, "eu", zoneOf(Request{Coord: london}))
		assert.Equal(t, "ap", zoneOf(Request{Coord: tokyo}))
	}
	require.NoError(t, b.SetHealthy("eu-1", false))
	assert.Equal(t, "eu-2", addrsOf(t, b, 1, Request{Coord: london})[0], "the zone's other backend")
	require.NoError(t, b.SetHealthy("eu-2", false))
	assert.Equal(t, "us", zoneOf(Request{Coord: london}), "London spills to Virginia, not Tokyo")
	require.NoError(t, b.SetHealthy("eu-1", true))
	assert.Equal(t, "eu", zoneOf(Request{Coord: london}))
}

func TestGeoSpillsOverAtCapacity(t *testing.T) {
	bs := geoBackends()
	bs[0].Capacity, bs[1].Capacity, bs[2].Capacity = 1, 1, 1
	b, err := New(Geo{}, bs, seeded(13))
	require.NoError(t, err)
	held := hold(t, b, 0)
	for range 4 {
		p, err := b.Pick(context.Background(), Request{Coord: london})
		require.NoError(t, err)
		held = append(held, p)
	}
	got := []string{held[0].Addr(), held[1].Addr(), held[2].Addr(), held[3].Addr()}
	assert.ElementsMatch(t, []string{"eu-1", "eu-2", "us-1", "ap-1"}, got, "eu fills, then us, then ap")
	held[0].Done(Result{})
	assert.Equal(t, held[0].Addr(), addrsOf(t, b, 1, Request{Coord: london})[0])
}

func TestGeoByZoneLatency(t *testing.T) {
	b, err := New(Geo{ZoneLatency: map[string]map[string]time.Duration{
		"eu": {"us": 80 * time.Millisecond, "ap": 220 * time.Millisecond},
		"me": {"eu": 40 * time.Millisecond, "ap": 120 * time.Millisecond, "us": 150 * time.Millisecond},
	}}, geoBackends(), Options{})
	require.NoError(t, err)
	assert.Contains(t, addrsOf(t, b, 1, Request{Zone: "eu"})[0], "eu-")
	assert.Contains(t, addrsOf(t, b, 1, Request{Zone: "me"})[0], "eu-")
	assert.Equal(t, "ap-1", addrsOf(t, b, 1, Request{Zone: "ap"})[0], "own zone at 0")
	require.NoError(t, b.Drain("eu-1"))
	require.NoError(t, b.Drain("eu-2"))
	assert.Equal(t, "ap-1", addrsOf(t, b, 1, Request{Zone: "me"})[0])
	assert.Equal(t, "us-1", addrsOf(t, b, 1, Request{Zone: "eu"})[0])
	// Unknown origin: anywhere.
	assert.NotEmpty(t, addrsOf(t, b, 1, Request{Zone: "mars"})[0])
}

// Zones equally near a request are tried in the order of their names.
func TestGeoTiesGoByZoneName(t *testing.T) {
	b, err := New(Geo{ZoneLatency: map[string]map[string]time.Duration{
		"me": {"eu": 40 * time.Millisecond, "ap": 40 * time.Millisecond},
	}}, []Backend{{Addr: "eu-1", Zone: "eu", Weight: 1}, {Addr: "ap-1", Zone: "ap", Weight: 1}}, Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"ap-1", "ap-1", "ap-1"}, addrsOf(t, b, 3, Request{Zone: "me"}))
	require.NoError(t, b.Drain("ap-1"))
	assert.Equal(t, []string{"eu-1"}, addrsOf(t, b, 1, Request{Zone: "me"}))
}

// A zone's backend takes requests up to its Capacity and no more, the rest
// spilling over zone by zone, however many zones there are.
func TestGeoSpillsOverZoneByZoneAtCapacity(t *testing.T) {
	const zones = maxTrackedZones + 6
	var bs []Backend
	for i := range zones {
		z := fmt.Sprintf("z%02d", i)
		bs = append(bs, Backend{Addr: z + "-1", Zone: z, Weight: 1, Capacity: 2, Coord: &Coord{Lat: 0, Lon: float64(i)}})
	}
	// Listed farthest first, so that a scan of the list in order would not
	// find the nearest zone with room.
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	b, err := New(Geo{}, rev, Options{})
	require.NoError(t, err)
	req := Request{Coord: &Coord{Lat: 0, Lon: -1}}
	var got []string
	for range 2 * zones {
		p, err := b.Pick(context.Background(), req)
		require.NoError(t, err)
		got = append(got, p.Addr())
	}
	for i := range zones {
		assert.Equal(t, []string{bs[i].Addr, bs[i].Addr}, got[2*i:2*i+2], "the %d-th nearest zone takes two", i)
	}
	_, err = b.Pick(context.Background(), req)
	assert.ErrorIs(t, err, ErrAtCapacity)
}

// A request that avoids a backend (a retry) is still spread by weight over
// the others: the balancer asks the algorithm again, three times, before it
// falls back to a uniform scan. With weights a=10 (avoided), b=1, c=9, the
// first pick or one of three re-picks misses a with probability 1-1/16,
// and then lands on c with probability 0.9; the scan takes c half the
// time: 0.9·15/16 + 0.5/16 = 0.875.
func TestAvoidKeepsWeights(t *testing.T) {
	b, err := New(WeightedRandom{}, []Backend{{Addr: "a", Weight: 10}, {Addr: "b", Weight: 1}, {Addr: "c", Weight: 9}}, seeded(6))
	require.NoError(t, err)
	counts := map[string]int{}
	for _, a := range addrsOf(t, b, 8000, Request{Avoid: []string{"a"}}) {
		counts[a]++
	}
	assert.Zero(t, counts["a"])
	assert.InDelta(t, 0.875, float64(counts["c"])/8000, 0.015)
}

func TestAvoidNeverRepeatsUnlessOnlyOne(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new(backends(3), Options{})
			require.NoError(t, err)
			req := Request{Key: "k", Avoid: []string{"10.0.0.1:80", "10.0.0.2:80"}}
			for range 20 {
				assert.Equal(t, "10.0.0.3:80", addrsOf(t, b, 1, req)[0])
			}
			req.Avoid = append(req.Avoid, "10.0.0.3:80")
			_, err = b.Pick(context.Background(), req)
			assert.ErrorIs(t, err, ErrNoHealthyBackend)

			one, err := a.new(backends(1), Options{})
			require.NoError(t, err)
			assert.Equal(t, "10.0.0.1:80", addrsOf(t, one, 1, Request{Avoid: []string{"10.0.0.1:80"}})[0])
		})
	}
}

func TestCapacityIsHonouredByEveryAlgorithm(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			bs := backends(3)
			for i := range bs {
				bs[i].Capacity = 2
			}
			b, err := a.new(bs, Options{})
			require.NoError(t, err)
			hold(t, b, 6)
			for _, s := range b.Stats().Backends {
				assert.Equal(t, int64(2), s.InFlight)
			}
			_, err = b.Pick(context.Background(), Request{Key: "k"})
			assert.ErrorIs(t, err, ErrAtCapacity)
		})
	}
}

// Geo measures nearness by the haversine great-circle distance on a sphere
// of radius 6371 km.
func TestDistanceKm(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b Coord
		km   float64
	}{
		{"London–Paris", Coord{Lat: 51.5074, Lon: -0.1278}, Coord{Lat: 48.8566, Lon: 2.3522}, 343.556},
		{"Sydney–New York", Coord{Lat: -33.87, Lon: 151.21}, Coord{Lat: 40.71, Lon: -74.01}, 15988.394},
		{"antipodes on the equator", Coord{}, Coord{Lon: 180}, 20015.087},
		{"pole to pole", Coord{Lat: -90}, Coord{Lat: 90}, 20015.087},
		{"same point", Coord{Lat: 10, Lon: 20}, Coord{Lat: 10, Lon: 20}, 0},
	} {
		assert.InDelta(t, c.km, distanceKm(c.a, c.b), 0.001, c.name)
		assert.InDelta(t, c.km, distanceKm(c.b, c.a), 0.001, c.name+", reversed")
	}
}

// The bounds of a coordinate are valid, a step beyond them is not.
func TestCoordBounds(t *testing.T) {
	for _, c := range []Coord{{Lat: 90, Lon: 180}, {Lat: -90, Lon: -180}, {Lat: 90, Lon: -180}, {Lat: -90, Lon: 180}} {
		_, err := New(Geo{}, []Backend{{Addr: "a", Weight: 1, Coord: &c}}, Options{})
		assert.NoError(t, err, "%+v", c)
	}
	for _, c := range []Coord{{Lat: 90.001}, {Lat: -90.001}, {Lon: 180.001}, {Lon: -180.001}} {
		_, err := New(Geo{}, []Backend{{Addr: "a", Weight: 1, Coord: &c}}, Options{})
		assert.ErrorIs(t, err, ErrInvalidCoord, "%+v", c)
	}
}

// A zone is as near as the mean of its backends' coordinates; a zone whose
// backends give none ("0", first by name) is tried after every zone that
// does.
func TestGeoZoneCentroid(t *testing.T) {
	bs := []Backend{
		{Addr: "a-1", Zone: "a", Weight: 1, Coord: &Coord{Lat: 0, Lon: 0}},
		{Addr: "a-2", Zone: "a", Weight: 1, Coord: &Coord{Lat: 0, Lon: 20}},
		{Addr: "b-1", Zone: "b", Weight: 1, Coord: &Coord{Lat: 0, Lon: 12}},
		{Addr: "0-1", Zone: "0", Weight: 1},
	}
	b, err := New(Geo{}, bs, seeded(14))
	require.NoError(t, err)
	for range 10 {
		assert.Contains(t, addrsOf(t, b, 1, Request{Coord: &Coord{Lat: 0, Lon: 9}})[0], "a-", "a's centre, longitude 10, is nearer than b's 12")
	}
	require.NoError(t, b.Drain("a-1"))
	require.NoError(t, b.Drain("a-2"))
	require.NoError(t, b.Drain("b-1"))
	assert.Equal(t, "0-1", addrsOf(t, b, 1, Request{Coord: &Coord{Lat: 0, Lon: 9}})[0])
}

// A full zone spills to the zones of unknown latency too, and a latency
// of zero is allowed.
func TestGeoSpillsToZonesOfUnknownLatency(t *testing.T) {
	bs := []Backend{
		{Addr: "a-1", Zone: "a", Weight: 1},
		{Addr: "b-1", Zone: "b", Weight: 1, Capacity: 1},
		{Addr: "c-1", Zone: "c", Weight: 1},
	}
	b, err := New(Geo{ZoneLatency: map[string]map[string]time.Duration{"b": {"b": 0}}}, bs, seeded(15))
	require.NoError(t, err)
	held, err := b.Pick(context.Background(), Request{Zone: "b"})
	require.NoError(t, err)
	assert.Equal(t, "b-1", held.Addr(), "its own zone first")
	got := addrsOf(t, b, 1, Request{Zone: "b"})[0]
	assert.Contains(t, []string{"a-1", "c-1"}, got, "b is full at its Capacity of 1")
	held.Done(Result{})
	assert.Equal(t, "b-1", addrsOf(t, b, 1, Request{Zone: "b"})[0])
}

// Weighted least connections: (in-flight + 1) / weight, so an idle
// backend of weight 10 takes nine requests before one of weight 1 ties
// with it.
func TestWeightedLeastConnByWeight(t *testing.T) {
	b, err := New(WeightedLeastConn{}, []Backend{{Addr: "light", Weight: 1}, {Addr: "heavy", Weight: 10}}, seeded(16))
	require.NoError(t, err)
	for i, p := range hold(t, b, 9) {
		assert.Equal(t, "heavy", p.Addr(), "pick %d", i)
	}
}

// Peak EWMA compares two backends by latency × (in-flight + 1) / weight:
// at 10 ms and weight 1 against 12 ms and weight 3, the second takes the
// first two picks (4 and 8 against 10), the first the third (10 against
// 12), the second the fourth (12 against 20).
func TestPeakEWMAComparesLatencyTimesLoadPerWeight(t *testing.T) {
	now := time.Unix(0, 0)
	b, err := New(PeakEWMA{}, []Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 3}},
		Options{Now: func() time.Time { return now }, Rand: seeded(18).Rand})
	require.NoError(t, err)
	for _, p := range hold(t, b, 2) { // one each: an unmeasured backend in use costs more than an idle one
		p.Done(Result{Latency: map[string]time.Duration{"a": 10 * time.Millisecond, "b": 12 * time.Millisecond}[p.Addr()]})
	}
	var got []string
	for _, p := range hold(t, b, 4) {
		got = append(got, p.Addr())
	}
	assert.Equal(t, []string{"b", "b", "a", "b"}, got)
}

// Of two unmeasured backends with requests in flight, the one with fewer
// takes the next request.
func TestPeakEWMAUnmeasuredByInFlight(t *testing.T) {
	b, err := New(PeakEWMA{}, backends(2), seeded(19))
	require.NoError(t, err)
	hold(t, b, 4)
	for _, s := range b.Stats().Backends {
		assert.Equal(t, int64(2), s.InFlight, s.Addr)
	}
}

// Of two backends, P2C (and Geo within a zone) compares both, by
// (in-flight + 1) / weight: the backend of weight 3 takes the first two
// picks, at costs 1/3 and 2/3 against the idle one's 1.
func TestP2CComparesByLoadPerWeight(t *testing.T) {
	bs := []Backend{{Addr: "a", Zone: "z", Weight: 1}, {Addr: "b", Zone: "z", Weight: 3}}
	for name, alg := range map[string]Algorithm{"P2C": P2C{}, "Geo": Geo{}} {
		b, err := New(alg, bs, seeded(17))
		require.NoError(t, err)
		for i := range 2 {
			p, err := b.Pick(context.Background(), Request{Zone: "z"})
			require.NoError(t, err)
			assert.Equal(t, "b", p.Addr(), "%s, pick %d", name, i)
		}
	}
}
