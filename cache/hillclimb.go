package cache

import "math"

// Hill climbing — the adaptive window of W-TinyLFU.
//
// A large window favours recency (new keys stay long enough to be read
// again), a small one frequency (the main area, guarded by the sketch,
// holds more). Which is better depends on the workload and changes with
// it, so the window is sized by hill climbing on the hit ratio: the
// method of Einziger, Eytan, Friedman and Manes, "Adaptive Software Cache
// Management" (Middleware 2018), as Caffeine implements it
// (BoundedLocalCache.determineAdjustment) and otter v2 after it.
//
// Every sample of 10×capacity lookups (the sketch's aging period) the
// climber compares the sample's hit ratio with the previous sample's.
// If it rose or held, the window moves again in the direction of the last
// step; if it fell, in the other direction. The step starts at 6.25% of
// the capacity, as a decrease, and shrinks by 2% each sample while the hit
// ratio moves by less than 5 points, so the window settles; a change of 5
// points or more (the workload changed) restarts it at 6.25% of the
// capacity, in the direction just taken.
type hillClimber struct {
	hits, samples int64   // lookups in the current sample
	sampleSize    int64   // lookups per sample
	prevRate      float64 // the previous sample's hit ratio
	step          float64 // the next move, in units of weight; its sign is the direction
	restart       float64 // the step after a restart: 6.25% of the capacity
}

const (
	climbStepPercent = 0.0625 // HILL_CLIMBER_STEP_PERCENT
	climbStepDecay   = 0.98   // HILL_CLIMBER_STEP_DECAY_RATE
	climbRestart     = 0.05   // HILL_CLIMBER_RESTART_THRESHOLD
)

func newHillClimber(capacity int64) hillClimber {
	restart := climbStepPercent * float64(capacity)
	return hillClimber{sampleSize: sketchSampleSize(capacity), step: -restart, restart: restart}
}

// climb counts a batch of lookups. At the end of a sample it returns the
// change to make to the window's size (positive to grow it); otherwise 0.
func (c *hillClimber) climb(hits, misses uint64) int64 {
	c.hits += int64(hits)
	c.samples += int64(hits + misses)
	if c.samples < c.sampleSize {
		return 0
	}
	rate := float64(c.hits) / float64(c.samples)
	change := rate - c.prevRate
	amount := c.step
	if change < 0 {
		amount = -amount
	}
	if math.Abs(change) >= climbRestart { // a rate change exactly at the threshold is as good as either side: > agrees
		c.step = math.Copysign(c.restart, amount)
	} else {
		c.step = climbStepDecay * amount
	}
	c.prevRate, c.hits, c.samples = rate, 0, 0
	return int64(amount)
}
