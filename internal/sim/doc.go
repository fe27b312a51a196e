// Package sim is the simulation kit behind the trade-off lab and the
// packages' simulated benchmarks.
//
// It has five parts, each in its own file:
//
//   - workloads.go: seeded key generators ([Uniform], [Zipf], [HotSpot],
//     [Sequential]) and arrival processes ([Poisson], [Bursty], [Constant]
//     arrivals), so a workload is reproducible from one seed;
//   - dist.go: service-time distributions ([Constant], [Exponential],
//     [LogNormal], [Bimodal]) behind the [Dist] interface;
//   - recorder.go: a latency [Recorder] with percentiles, built on
//     github.com/HdrHistogram/hdrhistogram-go;
//   - engine.go: a discrete-event [Engine] on virtual time, so a simulated
//     minute of traffic runs in milliseconds, plus [Station], a k-server
//     FIFO queue that models a backend on that engine;
//   - procs.go: [Procs], which runs goroutines as processes on an Engine's
//     virtual time, so code that blocks (a policy's Execute, an HTTP
//     handler) runs unchanged in a simulation, with a virtual sleep and
//     virtual context deadlines.
//
// Everything takes its randomness from a *rand.Rand made by [NewRand], so the
// same seed gives the same numbers. Nothing in the package reads the wall
// clock.
package sim
