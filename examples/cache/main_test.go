package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The program prints one row per configuration; caching cuts database calls.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-reads", "500", "-keys", "1000", "-db-latency", "100us"}, &out))
	s := out.String()
	assert.Contains(t, s, "no cache")
	assert.Contains(t, s, "L1 (1,000 entries")
	if !strings.Contains(s, "skipped") {
		assert.Contains(t, s, "L1 + L2 (Redis)")
		// L1 + L2 is slower than L1 alone here; the output says why, so
		// that nobody reads it as "an L2 hurts".
		assert.Regexp(t, `(?m)^L1 \+ L2 is no faster than L1 alone .*round trip.*instances`, s)
	}
	lines := strings.Split(s, "\n")
	var noCache, l1 string
	for _, l := range lines {
		if strings.HasPrefix(l, "no cache") {
			noCache = l
		}
		if strings.HasPrefix(l, "L1 (") {
			l1 = l
		}
	}
	require.NotEmpty(t, noCache)
	require.NotEmpty(t, l1)
	assert.True(t, strings.HasSuffix(strings.TrimSpace(noCache), "500"), "every read hits the database without a cache: %q", noCache)
	assert.False(t, strings.HasSuffix(strings.TrimSpace(l1), " 500"), "the L1 absorbs repeats: %q", l1)
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-reads", "0"}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-reads")
}
