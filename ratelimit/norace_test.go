//go:build !race

package ratelimit

// floodKeys is the number of distinct keys the flood test sends; see
// race_test.go.
const floodKeys = 1_000_000
