package flagenv

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestSet(t *testing.T) {
	t.Setenv("SVC_REDIS_ADDR", "from-env:6379")
	t.Setenv("SVC_WORKERS", "7")
	t.Setenv("SVC_NAME", "ignored")
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("redis-addr", "default", "")
	workers := fs.Int("workers", 1, "")
	name := fs.String("name", "default", "")
	if err := fs.Parse([]string{"-name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := Set(fs, "SVC"); err != nil {
		t.Fatal(err)
	}
	if *addr != "from-env:6379" || *workers != 7 {
		t.Errorf("redis-addr=%q workers=%d, want the environment's from-env:6379 and 7", *addr, *workers)
	}
	if *name != "from-flag" {
		t.Errorf("name = %q: the environment overrode a flag given on the command line", *name)
	}
}

func TestSetRejectsBadValue(t *testing.T) {
	t.Setenv("SVC_WORKERS", "many")
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("workers", 1, "")
	err := Set(fs, "SVC")
	if err == nil || !strings.Contains(err.Error(), `SVC_WORKERS="many"`) {
		t.Fatalf("err = %v, want one naming SVC_WORKERS=\"many\"", err)
	}
}
