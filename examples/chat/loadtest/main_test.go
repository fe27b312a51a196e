package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The short mode of the load test: a gateway killed and Redis cut
// mid-run, and still every acknowledged message is shown to every member
// in one order, once in exactly-once mode. In at-least-once mode with
// replies dropped, resends are shown as duplicates, and counted.
func TestLoadShort(t *testing.T) {
	redistest.New(t) // skips, or fails under SYSDESIGN_REQUIRE_REDIS, without redis-server
	for _, c := range []struct {
		mode string
		args []string
	}{
		{service.ExactlyOnce, []string{"-drop", "0.1"}},
		{service.AtLeastOnce, []string{"-drop", "0.2", "-cut", "0", "-kill=false"}},
	} {
		t.Run(c.mode, func(t *testing.T) {
			args := append([]string{"-clients", "30", "-gateways", "2", "-group-size", "5", "-rate", "2",
				"-duration", "2s", "-cut", "1s", "-delivery", c.mode}, c.args...)
			var out bytes.Buffer
			r, err := run(context.Background(), args, &out)
			require.NoError(t, err)
			defer func() {
				if t.Failed() {
					t.Logf("load test output:\n%s", out.String())
				}
			}()
			assert.Positive(t, r.Acked)
			assert.Zero(t, r.Lost, "every acknowledged message is shown to every member")
			assert.Zero(t, r.OrderViolations, "every member sees one order per conversation")
			assert.Positive(t, r.Resends, "dropped replies make clients resend")
			if c.mode == service.ExactlyOnce {
				assert.Zero(t, r.Duplicates)
				assert.Positive(t, r.Reconnects, "the killed gateway's clients reconnect")
			} else {
				assert.Positive(t, r.Duplicates, "a resend after a lost reply is stored and shown again")
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-clients", "1"}, {"-drop", "1"}, {"-gateways", "1"}, {"-rate", "0"}} {
		_, err := run(context.Background(), args, io.Discard)
		assert.Error(t, err, "%v", args)
	}
}
