module github.com/sysdesign-go/sysdesign/internal/sim

go 1.26.0

// The simulation kit is a module of its own so that its HDR histogram (and
// what that requires) stays out of the go.mod of the library that users
// import; the lab, the benchmarks and the consensus benchmarks use it.

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
