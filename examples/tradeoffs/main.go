// Command tradeoffs is the trade-off lab: it runs experiments that turn the
// claims of the guide System Design Round — Principal Engineer Interview
// Preparation into numbers, using this library's own code. Each experiment
// gives the claim it tests a verdict — agrees, refutes or nuance — with a
// reason computed from its numbers; the lab prints the ledger of verdicts,
// then each result's tables, and writes an HTML report that opens with the
// same ledger and draws the charts.
//
//	go run ./examples/tradeoffs                 # every experiment (make demo)
//	go run ./examples/tradeoffs -only lb,cache  # some groups or experiments
//	go run ./examples/tradeoffs -quick          # a small run, in seconds
//	go run ./examples/tradeoffs -list           # what there is
//
// Every experiment is seeded (-seed), and those on virtual time give the
// same numbers for the same seed on any machine.
//
// Guide: each result quotes the section it tests, among "Scalability
// Patterns → Load Balancing Strategies", "Scalability Patterns → Horizontal
// vs Vertical Scaling", "Database Design → Caching Strategies", "Database
// Design → Database Sharding", "Distributed Systems → Distributed
// Consensus", "Distributed Systems → CAP Theorem", "Distributed Systems →
// Consistency Models", "Security Considerations → Rate Limiting", "Fault
// Tolerance → Circuit Breakers", "Fault Tolerance → Failover" and
// "Performance Considerations → Throughput Optimization".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tradeoffs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "", "comma-separated groups or experiment names to run (default all; see -list)")
	quick := fs.Bool("quick", false, "small runs that finish in seconds")
	seed := fs.Uint64("seed", 1, "seed for every random stream; the same seed gives the same numbers")
	list := fs.Bool("list", false, "list the experiments and exit")
	out := fs.String("out", "report", "folder for index.html and results.json")
	noProgress := fs.Bool("no-progress", false, "do not draw progress bars on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tradeoffs [flags]\n\nRuns the sysdesign trade-off lab.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tradeoffs: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return 2
	}
	all := experiments()
	if err := lab.Validate(all); err != nil {
		fmt.Fprintf(stderr, "tradeoffs: %v\n", err)
		return 1
	}
	selected, err := lab.Select(all, *only)
	if err != nil {
		fmt.Fprintf(stderr, "tradeoffs: %v\n", err)
		return 2
	}
	if *list {
		for _, e := range selected {
			fmt.Fprintf(stdout, "%-24s %-11s %s\n", e.Name, e.Group, e.Title)
		}
		return 0
	}
	if err := lab.PrepareOut(*out); err != nil {
		fmt.Fprintf(stderr, "tradeoffs: %v\n", err)
		return 1
	}
	opts := lab.Options{Seed: *seed, Quick: *quick, Stdout: stdout, Stderr: stderr}
	if *noProgress {
		opts.Stderr = nil
	}
	outcomes, err := lab.Run(ctx, selected, opts)
	if err != nil {
		fmt.Fprintf(stderr, "tradeoffs: %v (no report written)\n", err)
		return 1
	}
	meta := lab.ReportMeta{Seed: *seed, Quick: *quick, When: time.Now()}
	if err := lab.WriteReport(*out, meta, outcomes); err != nil {
		fmt.Fprintf(stderr, "tradeoffs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "tradeoffs: report written to %s/index.html\n", *out)
	return 0
}
