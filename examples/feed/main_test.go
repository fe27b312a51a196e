package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// bleve starts its analysis workers when it is imported and never stops
// them; they are not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

// The program serves the API with the flags' strategy, prints a token per
// demo user, and stops when its context ends.
func TestRun(t *testing.T) {
	db := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out strings.Builder
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-redis", db.Addr, "-prefix", db.Prefix, "-strategy", "read", "-redis-shards", db.Addr, "-demo-users", "alice", "-media", t.TempDir(), "-search", t.TempDir() + "/index"},
			&out, io.Discard, func(u string) { urls <- u })
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(b), `"strategy":"read"`)
	cancel()
	require.NoError(t, <-done)
	assert.True(t, strings.HasPrefix(out.String(), "alice\t"), out.String())
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-strategy", "push"}, {"-strategy", "hybrid:0"}, {"-timeline-cap", "-1"}, {"-token-key", "zz"}, {"-max-media", "-1"}, {"-redis-shards", "127.0.0.1:1,,127.0.0.1:2"}, {"extra"}} {
		err := run(context.Background(), append(args, "-addr", "127.0.0.1:0"), io.Discard, io.Discard, nil)
		assert.Error(t, err, "%v", args)
	}
}
