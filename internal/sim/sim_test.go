package sim

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRandIsReproducible(t *testing.T) {
	a, b, c := NewRand(7, 1), NewRand(7, 1), NewRand(7, 2)
	same := true
	for range 100 {
		x, y, z := a.Uint64(), b.Uint64(), c.Uint64()
		require.Equal(t, x, y)
		same = same && x == z
	}
	assert.False(t, same, "different streams must differ")
}

func TestZipfRankFrequencies(t *testing.T) {
	for _, s := range []float64{0.8, 1.0, 1.2} {
		const n, draws = 1000, 400_000
		z, err := NewZipf(NewRand(1, 0), s, n)
		require.NoError(t, err)
		counts := make([]int, n)
		for range draws {
			k := z.Next()
			if k >= n {
				t.Fatalf("s=%v: key %d outside [0, %d)", s, k, n)
			}
			counts[k]++
		}
		// Frequencies of the top ranks match 1/k^s within sampling noise.
		for k := range 10 {
			p := z.Prob(uint64(k))
			want := math.Pow(float64(k+1), -s) / harmonic(n, s)
			assert.InDelta(t, want, p, 1e-12)
			sd := math.Sqrt(draws * p * (1 - p))
			assert.InDelta(t, draws*p, float64(counts[k]), 5*sd, "s=%v rank %d", s, k)
		}
		// Rank 1 over rank 2 is 2^s.
		assert.InEpsilon(t, math.Pow(2, s), float64(counts[0])/float64(counts[1]), 0.05, "s=%v", s)
	}
}

func harmonic(n int, s float64) float64 {
	h := 0.0
	for k := 1; k <= n; k++ {
		h += math.Pow(float64(k), -s)
	}
	return h
}

func TestUniformHotSpotSequential(t *testing.T) {
	u, err := NewUniform(NewRand(2, 0), 10)
	require.NoError(t, err)
	counts := make([]int, 10)
	for range 100_000 {
		counts[u.Next()]++
	}
	for k, c := range counts {
		assert.InDelta(t, 10_000, c, 500, "key %d", k)
	}

	h, err := NewHotSpot(NewRand(3, 0), 1000, 0.2, 0.8)
	require.NoError(t, err)
	require.EqualValues(t, 200, h.HotKeys())
	hot := 0
	for range 100_000 {
		if h.Next() < h.HotKeys() {
			hot++
		}
	}
	assert.InDelta(t, 80_000, hot, 700)

	s, err := NewSequential(100, 3)
	require.NoError(t, err)
	var got []uint64
	for range 7 {
		got = append(got, s.Next())
	}
	assert.Equal(t, []uint64{100, 101, 102, 100, 101, 102, 100}, got)
}

func TestPoissonMeanRate(t *testing.T) {
	p, err := NewPoisson(NewRand(4, 0), 1000)
	require.NoError(t, err)
	var total time.Duration
	const n = 200_000
	for range n {
		total += p.Next()
	}
	rate := n / total.Seconds()
	assert.InEpsilon(t, 1000, rate, 0.01)
}

func TestBurstyRates(t *testing.T) {
	b, err := NewBursty(NewRand(5, 0), 1000, 100, 100*time.Millisecond, 400*time.Millisecond)
	require.NoError(t, err)
	assert.InDelta(t, 280, b.MeanRate(), 1e-9)
	var now time.Duration
	on, off := 0, 0
	for now < 200*time.Second {
		now += b.Next()
		if now%(500*time.Millisecond) < 100*time.Millisecond {
			on++
		} else {
			off++
		}
	}
	// 100 ms at 1000/s and 400 ms at 100/s per 500 ms cycle, over 400 cycles.
	assert.InEpsilon(t, 40_000, on, 0.03)
	assert.InEpsilon(t, 16_000, off, 0.03)

	silent, err := NewBursty(NewRand(5, 1), 500, 0, 10*time.Millisecond, 90*time.Millisecond)
	require.NoError(t, err)
	now = 0
	for range 10_000 {
		now += silent.Next()
		if now%(100*time.Millisecond) >= 10*time.Millisecond {
			t.Fatalf("arrival at %v falls in an off period", now)
		}
	}
}

func TestDistributionMeans(t *testing.T) {
	r := NewRand(6, 0)
	exp, err := NewExponential(r, 10*time.Millisecond)
	require.NoError(t, err)
	ln, err := NewLogNormal(r, 10*time.Millisecond, 0.8)
	require.NoError(t, err)
	bi, err := NewBimodal(r, Constant(time.Millisecond), Constant(100*time.Millisecond), 0.01)
	require.NoError(t, err)
	for name, d := range map[string]Dist{"exponential": exp, "lognormal": ln, "bimodal": bi, "constant": Constant(3 * time.Millisecond)} {
		var sum float64
		const n = 300_000
		rec := NewRecorder()
		for range n {
			v := d.Sample()
			sum += float64(v)
			rec.Record(v)
		}
		assert.InEpsilon(t, float64(d.Mean()), sum/n, 0.02, name)
		if name == "lognormal" {
			assert.InEpsilon(t, float64(10*time.Millisecond), float64(rec.Percentile(50)), 0.02, "log-normal median")
		}
		if name == "bimodal" {
			assert.Equal(t, time.Millisecond, rec.Percentile(98).Round(time.Microsecond))
			assert.Equal(t, 100*time.Millisecond, rec.Percentile(99.5).Round(time.Millisecond))
		}
	}
}

func TestRecorderPercentilesWithinStatedError(t *testing.T) {
	rec := NewRecorder()
	// 1..100000 µs: the p-th percentile is p*1000 µs.
	for i := 1; i <= 100_000; i++ {
		rec.Record(time.Duration(i) * time.Microsecond)
	}
	tol := math.Pow(10, -SignificantFigures)
	for _, p := range []float64{50, 90, 99, 99.9} {
		want := p * 1000 * float64(time.Microsecond)
		assert.InEpsilon(t, want, float64(rec.Percentile(p)), tol, "p%v", p)
	}
	s := rec.Summary()
	assert.EqualValues(t, 100_000, s.Count)
	assert.InEpsilon(t, float64(time.Microsecond), float64(s.Min), tol)
	assert.InEpsilon(t, float64(100*time.Millisecond), float64(s.Max), tol)
	assert.InEpsilon(t, 50_000.5*float64(time.Microsecond), float64(s.Mean), tol)
	assert.InEpsilon(t, float64(s.P99), float64(rec.Percentile(99)), 1e-9)

	other := NewRecorder()
	other.Record(2 * time.Hour)
	assert.EqualValues(t, 1, other.Clipped())
	rec.Merge(other)
	assert.EqualValues(t, 100_001, rec.Count())
	assert.EqualValues(t, 1, rec.Clipped())
	rec.Reset()
	assert.Zero(t, rec.Count())
	assert.Equal(t, Summary{}, rec.Summary())
}

func TestEngineOrdersEventsByTimeThenSchedule(t *testing.T) {
	var e Engine
	var got []string
	e.Schedule(2*time.Second, func() { got = append(got, "b") })
	e.Schedule(time.Second, func() {
		got = append(got, "a")
		e.Schedule(time.Second, func() { got = append(got, "c") }) // same instant as b, scheduled later
	})
	e.Schedule(10*time.Second, func() { got = append(got, "late") })
	require.NoError(t, e.Run(5*time.Second))
	assert.Equal(t, []string{"a", "b", "c"}, got)
	assert.Equal(t, 5*time.Second, e.Now())
	assert.Equal(t, 1, e.Pending())
	assert.Equal(t, sim2020(5*time.Second), e.Clock()())
	require.NoError(t, e.Run(Forever))
	assert.Equal(t, 10*time.Second, e.Now())
	assert.EqualValues(t, 4, e.Processed())
}

func sim2020(d time.Duration) time.Time { return Epoch.Add(d) }

func TestEngineStopAndErrors(t *testing.T) {
	var e Engine
	n := 0
	var tick func()
	tick = func() {
		n++
		if n == 3 {
			e.Stop()
		}
		e.Schedule(time.Second, tick)
	}
	e.Schedule(0, tick)
	require.NoError(t, e.Run(Forever))
	assert.Equal(t, 3, n)
	assert.Equal(t, 2*time.Second, e.Now())

	var bad Engine
	bad.Schedule(-time.Second, func() {})
	err := bad.Run(Forever)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "-1s")
	var nilFn Engine
	nilFn.At(0, nil)
	require.ErrorIs(t, nilFn.Run(Forever), ErrInvalid)
}

// An M/M/1 station on the engine agrees with queueing theory.
func TestStationMatchesMM1(t *testing.T) {
	var e Engine
	st, err := NewStation(&e, 1, 1)
	require.NoError(t, err)
	arr, err := NewPoisson(NewRand(8, 0), 800)
	require.NoError(t, err)
	svc, err := NewExponential(NewRand(8, 1), time.Millisecond)
	require.NoError(t, err)
	rec := NewRecorder()
	const jobs = 200_000
	var submit func(int)
	submit = func(i int) {
		st.Submit(svc.Sample(), func(_, total time.Duration) { rec.Record(total) })
		if i < jobs {
			e.Schedule(arr.Next(), func() { submit(i + 1) })
		}
	}
	e.Schedule(0, func() { submit(1) })
	require.NoError(t, e.Run(Forever))
	q, err := NewMMk(800, 1000, 1)
	require.NoError(t, err)
	assert.EqualValues(t, jobs, st.Completed())
	assert.Zero(t, st.InFlight())
	assert.InDelta(t, 0.8, st.Utilization(), 0.02)
	assert.InEpsilon(t, float64(q.MeanSojourn()), float64(rec.Summary().Mean), 0.06)
	assert.InEpsilon(t, float64(q.SojournPercentile(99)), float64(rec.Percentile(99)), 0.08)
	// M/M/1 sojourn is exponential with rate mu-lambda: p99 = ln(100)/200 s.
	assert.InEpsilon(t, math.Log(100)/200, q.SojournPercentile(99).Seconds(), 1e-6)
}

func TestMMkFormulas(t *testing.T) {
	// Textbook value: k=2, a=1 Erlang → C = 1/3.
	q, err := NewMMk(1, 1, 2)
	require.NoError(t, err)
	assert.InDelta(t, 1.0/3, q.ErlangC(), 1e-12)
	assert.InDelta(t, 1.0/3+1, q.MeanSojourn().Seconds(), 1e-6)
	assert.InDelta(t, 0.5, q.SojournTail(q.SojournPercentile(50).Seconds()), 1e-6)
	_, err = NewMMk(2, 1, 2)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestStationQueuesBeyondServers(t *testing.T) {
	var e Engine
	st, err := NewStation(&e, 2, 2)
	require.NoError(t, err)
	var waits, totals []time.Duration
	for range 3 {
		st.Submit(2*time.Second, func(w, tot time.Duration) { waits = append(waits, w); totals = append(totals, tot) })
	}
	assert.Equal(t, 3, st.InFlight())
	assert.Equal(t, 1, st.Queued())
	require.NoError(t, e.Run(Forever))
	assert.Equal(t, []time.Duration{0, 0, time.Second}, waits)
	assert.Equal(t, []time.Duration{time.Second, time.Second, 2 * time.Second}, totals)
	assert.InDelta(t, 0.75, st.Utilization(), 1e-9)
	require.ErrorIs(t, st.SetSpeed(0), ErrInvalid)
}

func TestBadParameters(t *testing.T) {
	r := NewRand(1, 1)
	checks := map[string]error{}
	_, checks["uniform n=0"] = NewUniform(r, 0)
	_, checks["zipf s=0"] = NewZipf(r, 0, 10)
	_, checks["zipf s=NaN"] = NewZipf(r, math.NaN(), 10)
	_, checks["zipf n=0"] = NewZipf(r, 1, 0)
	_, checks["hotspot frac"] = NewHotSpot(r, 10, 1.5, 0.5)
	_, checks["hotspot ops"] = NewHotSpot(r, 10, 0.5, -1)
	_, checks["sequential"] = NewSequential(0, 0)
	_, checks["poisson"] = NewPoisson(r, -1)
	_, checks["constant arrivals"] = NewConstantArrivals(0)
	_, checks["bursty rate"] = NewBursty(r, 0, 0, time.Second, time.Second)
	_, checks["bursty period"] = NewBursty(r, 1, 0, 0, time.Second)
	_, checks["exponential"] = NewExponential(r, 0)
	_, checks["lognormal median"] = NewLogNormal(r, 0, 1)
	_, checks["lognormal sigma"] = NewLogNormal(r, time.Second, -1)
	_, checks["bimodal nil"] = NewBimodal(r, nil, Constant(1), 0.1)
	_, checks["bimodal p"] = NewBimodal(r, Constant(1), Constant(1), 2)
	_, checks["station servers"] = NewStation(&Engine{}, 0, 1)
	_, checks["station nil engine"] = NewStation(nil, 1, 1)
	_, checks["mmk"] = NewMMk(0, 1, 1)
	for name, err := range checks {
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err := NewZipf(r, 0.5, 0)
	assert.Contains(t, err.Error(), "got 0")
}
