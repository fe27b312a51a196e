package fanout_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
)

// One threshold, three strategies: write pushes every author, read none,
// hybrid those below its threshold; each author is either pushed or
// pulled, never both or neither.
func TestStrategies(t *testing.T) {
	for _, c := range []struct {
		st   fanout.Strategy
		name string
		push []int64 // follower counts pushed
		pull []int64
	}{
		{fanout.OnWrite, "write", []int64{0, 1, 1e9, math.MaxInt64 - 1}, nil},
		{fanout.OnRead, "read", nil, []int64{0, 1, 1e9}},
		{fanout.Hybrid(1000), "hybrid:1000", []int64{0, 999}, []int64{1000, 1e9}},
	} {
		assert.Equal(t, c.name, c.st.String())
		got, err := fanout.Parse(c.name)
		assert.NoError(t, err)
		assert.Equal(t, c.st, got)
		for _, n := range c.push {
			assert.True(t, c.st.Push(n), "%s pushes %d", c.name, n)
			assert.False(t, c.st.Pull(n))
		}
		for _, n := range c.pull {
			assert.True(t, c.st.Pull(n), "%s pulls %d", c.name, n)
			assert.False(t, c.st.Push(n))
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"", "push", "hybrid", "hybrid:", "hybrid:0", "hybrid:-5", "hybrid:x", "hybrid:9223372036854775807", "WRITE"} {
		_, err := fanout.Parse(s)
		assert.ErrorIs(t, err, fanout.ErrInvalid, "%q", s)
	}
}
