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

func checkDemo(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var public, alice []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "GET /public"):
			public = append(public, l)
		case strings.Contains(l, "key-alice"):
			alice = append(alice, l)
		}
	}
	require.Len(t, public, 6, out)
	for _, l := range public[:5] {
		assert.Contains(t, l, "→ 200")
	}
	assert.Contains(t, public[5], "→ 429")
	assert.Contains(t, public[5], `RateLimit-Policy: "per-ip";q=5;w=10`)
	assert.Contains(t, public[5], "Retry-After: ")
	require.Len(t, alice, 4, out)
	assert.Contains(t, alice[3], "→ 429")
	assert.Contains(t, alice[3], `"per-user";q=3;w=1, "per-user-1";q=20;w=3600`)
	assert.Contains(t, alice[0], "X-RateLimit-Remaining: 2")
	assert.Contains(t, out, "key-bob    → 200")
	assert.Contains(t, out, "→ 401")
	assert.Contains(t, out, `"status":429`)
	// A t beyond the 10 s window is explained where it is printed.
	assert.Regexp(t, `(?m)^    \(t is the seconds until the whole quota is back, up to two windows`, out)
}

// The demo shows the per-IP and per-user limits refusing with 429 and the
// headers, with spoofed X-Forwarded-For ignored.
func TestDemoInMemory(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), nil, &out))
	checkDemo(t, out.String())
}

func TestDemoRedis(t *testing.T) {
	db := redistest.New(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-redis", db.Addr}, &out))
	checkDemo(t, out.String())
}
