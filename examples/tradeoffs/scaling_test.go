package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

// The discrete-event simulation of the three designs agrees with M/M/1 and
// M/M/k within the tolerance the experiment states.
func TestScalingAgreesWithQueueingTheory(t *testing.T) {
	env := &lab.Env{Seed: 42}
	points, err := scalingRun(context.Background(), env, []float64{0.5, 0.8}, 100_000)
	require.NoError(t, err)
	require.Len(t, points, 6)
	for _, p := range points {
		name := scalingDesigns[p.design].name
		assert.LessOrEqual(t, relErr(p.sim.Mean, p.theoryMean), scalingTolerance, "%s ρ=%v mean %v vs %v", name, p.rho, p.sim.Mean, p.theoryMean)
		assert.LessOrEqual(t, relErr(p.sim.P50, p.theoryP50), scalingTolerance, "%s ρ=%v p50 %v vs %v", name, p.rho, p.sim.P50, p.theoryP50)
		assert.LessOrEqual(t, relErr(p.sim.P99, p.theoryP99), scalingTolerance, "%s ρ=%v p99 %v vs %v", name, p.rho, p.sim.P99, p.theoryP99)
		lambda := p.rho * scalingK / scalingService.Seconds()
		assert.InEpsilon(t, lambda, p.throughput, 0.03, "%s ρ=%v throughput", name, p.rho)
	}
	// The ordering queueing theory predicts: fast single server < shared
	// queue < random per-server queues, at every load.
	for i := range 2 {
		v, s, r := points[i], points[2+i], points[4+i]
		assert.Less(t, v.sim.P99, s.sim.P99, "ρ=%v", v.rho)
		assert.Less(t, s.sim.P99, r.sim.P99, "ρ=%v", v.rho)
	}
}
