package ratelimit

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fast Allow of the token bucket and GCRA decides exactly as AllowN
// does, on the same sequence of instants.
func TestAllowFastPathMatchesAllowN(t *testing.T) {
	limit := Limit{Events: 10, Per: time.Second, Burst: 3}
	// Bursts, pauses and steady arrivals, in milliseconds.
	var offsets []int
	for i := range 400 {
		switch {
		case i < 50:
			offsets = append(offsets, i) // a tight burst
		case i < 200:
			offsets = append(offsets, 50+(i-50)*97) // about the rate
		default:
			offsets = append(offsets, 15_000+(i-200)*30) // faster than the rate
		}
	}
	for _, alg := range []Algorithm{AlgTokenBucket, AlgGCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := time.Now()
				fast, err := New(alg, limit)
				require.NoError(t, err)
				slow, err := New(alg, limit)
				require.NoError(t, err)
				allowed := 0
				for _, ms := range offsets {
					time.Sleep(time.Until(base.Add(time.Duration(ms) * time.Millisecond)))
					d, err := slow.AllowN(time.Now(), 1)
					require.NoError(t, err)
					got := fast.Allow()
					require.Equal(t, d.Allowed, got, "at +%dms", ms)
					if got {
						allowed++
					}
				}
				assert.Greater(t, allowed, 0)
				assert.Less(t, allowed, len(offsets))
			})
		})
	}
}
