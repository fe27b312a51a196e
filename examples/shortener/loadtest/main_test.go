package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A short run of every configuration reports each row with zero failed
// redirects — including across the Redis cut when Redis is available.
func TestLoadTestRuns(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-duration", "400ms", "-concurrency", "4", "-codes", "50", "-redis", redistest.Addr()}, &out)
	require.NoError(t, err, out.String())
	s := out.String()
	for _, want := range []string{"req/s", "CPU/req", "redirect p50", "p99.9", "cache hit ratio", "no cache", "store reads +0s"} {
		assert.Contains(t, s, want)
	}
	if !strings.Contains(s, "skipping") {
		assert.Contains(t, s, "Redis cut at 50%")
		assert.Contains(t, s, "short-circuited")
		assert.Contains(t, s, "Redis commands for")
		// Only deletes publish invalidations, and the load test deletes
		// nothing.
		assert.NotContains(t, s, "publish")
	}
}

// -runs, -repeat, -store-latency and -cpuprofile: the chosen runs, each
// as often as asked, with a profile file per run.
func TestRunSelectionAndProfiles(t *testing.T) {
	var out bytes.Buffer
	prefix := filepath.Join(t.TempDir(), "prof")
	err := run(context.Background(), []string{"-duration", "300ms", "-concurrency", "4", "-codes", "20", "-redis", "",
		"-runs", "nocache, cache", "-repeat", "2", "-store-latency", "1ms", "-cpuprofile", prefix}, &out)
	require.NoError(t, err, out.String())
	s := out.String()
	assert.Contains(t, s, "store reads +1ms")
	for _, name := range []string{"cache-1", "cache-2", "no-cache-1", "no-cache-2"} {
		st, err := os.Stat(prefix + "-" + name + ".pprof")
		if assert.NoError(t, err, name) {
			assert.Positive(t, st.Size(), name)
		}
	}
	assert.NotContains(t, s, "Redis cut")
	rows := []int{row(s, "no cache #1"), row(s, "cache #1"), row(s, "no cache #2"), row(s, "cache #2")}
	assert.Equal(t, []int{rows[0], rows[0] + 1, rows[0] + 2, rows[0] + 3}, rows, "runs in the order given, repetitions alternating")
	assert.Contains(t, s, "Redis L2 false")
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-duration", "0"}, {"-zipf", "0"}, {"-create", "2"}, {"-concurrency", "0"},
		{"-repeat", "0"}, {"-runs", "cache,warm"}, {"-store-latency", "-1ms"}, {"extra"}} {
		err := run(context.Background(), args, &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
}

func TestSlug(t *testing.T) {
	assert.Equal(t, "cache-redis-cut-at-50", slug("cache, Redis cut at 50%"))
	assert.Equal(t, "no-cache-2", slug("no cache #2"))
}

// row returns the line number of the table row of the named run, or -1.
func row(report, name string) int {
	for i, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), name+"  ") {
			return i
		}
	}
	return -1
}
