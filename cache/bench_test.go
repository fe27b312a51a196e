package cache_test

import (
	"testing"

	"github.com/sysdesign-go/sysdesign/internal/cachebench"
)

// The peers (otter v2, golang-lru v2) are measured beside these policies
// in the bench module (bench/cache_test.go) with the same harness.

// Parallel Get on a full cache, for every policy.
func BenchmarkMemory_Get(b *testing.B) { cachebench.Mixed(b, cachebench.Policies(), 0) }

// Parallel 75% Get / 25% Set on a full cache, for every policy.
func BenchmarkMemory_Mixed75_25(b *testing.B) { cachebench.Mixed(b, cachebench.Policies(), 25) }

// Parallel inserts of new keys into a full cache, for every policy.
func BenchmarkMemory_Insert(b *testing.B) { cachebench.Insert(b, cachebench.Policies()) }

// Single-goroutine Get, for allocation checks and the cost of one lookup.
func BenchmarkMemory_GetSerial(b *testing.B) { cachebench.GetSerial(b, cachebench.Policies()) }

// Memory held per entry and the share of the capacity held when full, at
// 10k and 1M entries, for every policy.
func BenchmarkMemory_Fill(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		cachebench.Fill(b, cachebench.Policies(), n)
	}
}
