package sim

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// MaxRecordable is the largest latency a [Recorder] stores exactly; larger
// values are counted at this value (and reported by [Recorder.Clipped]).
const MaxRecordable = time.Hour

// SignificantFigures is the recorder's precision: every percentile is within
// 10^-SignificantFigures (0.1%) of the true value of the recorded sample.
const SignificantFigures = 3

// Recorder collects latencies and reports percentiles. It is an HDR
// histogram (github.com/HdrHistogram/hdrhistogram-go) from 1 ns to
// [MaxRecordable] at [SignificantFigures] digits, so memory is fixed
// (about 250 KiB) however many values are recorded. It is safe for concurrent
// use. The zero value is not usable; call [NewRecorder].
type Recorder struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram // guarded by mu
	clipped int64                   // guarded by mu
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{h: hdrhistogram.New(1, int64(MaxRecordable), SignificantFigures)}
}

// Record adds one latency. Values below 1 ns count as 1 ns; values above
// [MaxRecordable] count as MaxRecordable and are reported by Clipped.
func (r *Recorder) Record(d time.Duration) {
	v := int64(d)
	r.mu.Lock()
	if v > int64(MaxRecordable) {
		v = int64(MaxRecordable)
		r.clipped++
	}
	_ = r.h.RecordValue(max(v, 1)) // cannot fail: v is inside the range
	r.mu.Unlock()
}

// Merge adds every value recorded by o.
func (r *Recorder) Merge(o *Recorder) {
	if o == r {
		return
	}
	o.mu.Lock()
	snap := hdrhistogram.Import(o.h.Export())
	clipped := o.clipped
	o.mu.Unlock()
	r.mu.Lock()
	r.h.Merge(snap)
	r.clipped += clipped
	r.mu.Unlock()
}

// Count returns how many values were recorded.
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.TotalCount()
}

// Clipped returns how many values exceeded [MaxRecordable].
func (r *Recorder) Clipped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clipped
}

// Percentile returns the latency at or below which p percent (0–100) of the
// recorded values fall, or 0 when nothing was recorded.
func (r *Recorder) Percentile(p float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Duration(r.h.ValueAtPercentile(p))
}

// Summary is a snapshot of a recorder's distribution.
type Summary struct {
	Count               int64
	Min, Max, Mean      time.Duration
	P50, P90, P99, P999 time.Duration
}

// Summary returns count, min, max, mean and the p50/p90/p99/p99.9
// percentiles in one snapshot.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h.TotalCount() == 0 {
		return Summary{}
	}
	return Summary{
		Count: r.h.TotalCount(),
		Min:   time.Duration(r.h.Min()),
		Max:   time.Duration(r.h.Max()),
		Mean:  time.Duration(r.h.Mean()),
		P50:   time.Duration(r.h.ValueAtPercentile(50)),
		P90:   time.Duration(r.h.ValueAtPercentile(90)),
		P99:   time.Duration(r.h.ValueAtPercentile(99)),
		P999:  time.Duration(r.h.ValueAtPercentile(99.9)),
	}
}

// String formats the summary on one line.
func (s Summary) String() string {
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v p99.9=%v max=%v mean=%v",
		s.Count, s.Min, s.P50, s.P90, s.P99, s.P999, s.Max, s.Mean)
}

// Reset forgets every recorded value.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.h.Reset()
	r.clipped = 0
	r.mu.Unlock()
}
