//go:build race

package ratelimit

// floodKeys is the number of distinct keys the flood test sends. The race
// detector makes each map operation some 30 times slower, so under -race
// the flood is 100,000 keys (still ten times MaxKeys); without it, the
// million the package promises.
const floodKeys = 100_000
