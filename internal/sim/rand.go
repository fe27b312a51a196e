package sim

import (
	"errors"
	"math/rand/v2"
)

// ErrInvalid is wrapped by every error this package returns for a bad
// parameter.
var ErrInvalid = errors.New("sim: invalid parameter")

// NewRand returns a PCG generator for one random stream. Streams with the
// same seed and different stream numbers are independent; the same (seed,
// stream) pair always yields the same sequence.
func NewRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream^0x9e3779b97f4a7c15))
}
