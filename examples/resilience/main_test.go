package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPrintsWhatEachPolicyDid(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, 120); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"== flaky", "== down", "== healthy", "retry:", "breaker:", "bulkhead:", "fallback:", "closed→open", "half-open→closed]; now closed"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, " 0 errors\n"); n != 3 {
		t.Errorf("users saw errors in %d phases, want none (the fallback answers):\n%s", 3-n, s)
	}
}
