package main

import (
	"bytes"
	"context"
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
	for _, want := range []string{"req/s", "redirect p50", "p99.9", "cache hit ratio", "no cache"} {
		assert.Contains(t, s, want)
	}
	if !strings.Contains(s, "skipping") {
		assert.Contains(t, s, "Redis cut at 50%")
		assert.Contains(t, s, "short-circuited")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-duration", "0"}, {"-zipf", "0"}, {"-create", "2"}, {"-concurrency", "0"}} {
		err := run(context.Background(), args, &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
}
