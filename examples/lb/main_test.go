package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The program runs every algorithm through the proxy and prints a row per
// algorithm with each backend's share, and round robin gives the slow
// backend its full quarter.
func TestRunPrintsEveryAlgorithm(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, config{requests: 80, concurrency: 4, unit: 200 * time.Microsecond}))
	text := out.String()
	for _, a := range algorithms {
		assert.Contains(t, text, a.name)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	require.Len(t, lines, 1+len(algorithms))
	assert.Contains(t, lines[0], "slow-d share")
	rr := strings.Fields(lines[1])
	assert.Equal(t, []string{"round", "robin", "25%", "25%", "25%", "25%"}, rr[:6])
	assert.Equal(t, "0", rr[len(rr)-1], "no errors")
}

func TestRunRejectsBadConfig(t *testing.T) {
	assert.ErrorContains(t, run(context.Background(), &bytes.Buffer{}, config{requests: 0, concurrency: 1}), "must be positive")
}
