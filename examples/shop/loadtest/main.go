// Command loadtest is the flash-sale load and failure test of the shop
// (examples/shop), the guide's "Real-World System Designs → 4. E-commerce
// Platform" under the faults its "Security & Reliability → Fault
// Tolerance" section plans for: thousands of buyers race for a small stock
// through the balancer of three instances, while the payment provider
// fails, loses answers, answers slowly, declines and repeats callbacks,
// one instance is killed mid-run and Redis is cut for a while. Then it
// checks, for each inventory implementation:
//
//   - 0 oversold: units sold never exceed the stock, and equal the units
//     of completed orders;
//   - 0 double charges: the provider kept money exactly for the completed
//     orders, once each;
//   - 0 orders left in a non-final state, once recovery has run;
//   - every failed order fully compensated: no money kept, no unit held;
//   - stock arithmetic exact: available + reserved + sold = stock.
//
// It prints throughput and checkout latency (p50, p99) and exits 1 if a
// check fails. Needs Redis (REDIS_ADDR, default 127.0.0.1:6379):
//
//	go run ./examples/shop/loadtest -buyers 2000 -stock 50
//	go run ./examples/shop/loadtest -inventory raft -buyers 500 -stock 20 -redis-cut 1s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	o := defaultOptions()
	inv := fs.String("inventory", "all", "inventory to test: raft, redis, reservations or all")
	fs.IntVar(&o.Buyers, "buyers", o.Buyers, "buyers, each trying to buy one unit once")
	fs.IntVar(&o.Stock, "stock", o.Stock, "units in stock")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "buyers at once")
	fs.IntVar(&o.Instances, "cluster", o.Instances, "shop instances behind the balancer (one is killed mid-run when more than 1)")
	fs.DurationVar(&o.RedisCut, "redis-cut", o.RedisCut, "how long Redis is cut mid-run (0: never)")
	fs.Float64Var(&o.Faults.Errors, "pay-errors", o.Faults.Errors, "share of payment calls that fail")
	fs.Float64Var(&o.Faults.Lost, "pay-lost", o.Faults.Lost, "share of charges whose answer is lost")
	fs.Float64Var(&o.Faults.Declines, "pay-declines", o.Faults.Declines, "share of charges declined")
	fs.StringVar(&o.RedisAddr, "redis", o.RedisAddr, "Redis address (env REDIS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kinds := []string{"raft", "redis", "reservations"}
	if *inv != "all" {
		kinds = []string{*inv}
	}
	failed := false
	for _, k := range kinds {
		o.Inventory = k
		r, err := Run(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		r.print(out)
		if len(r.Violations) > 0 {
			failed = true
		}
	}
	if failed {
		return errors.New("invariants violated")
	}
	return nil
}

func (r Report) print(w io.Writer) {
	fmt.Fprintf(w, "inventory=%s buyers=%d stock=%d: %d completed, %d failed, %d abandoned by the buyer; %.0f checkouts/s; checkout p50 %v p99 %v; payment calls %d, charges %d, refunds %d\n",
		r.Inventory, r.Buyers, r.Stock, r.Completed, r.Failed, r.Abandoned, r.Throughput, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond),
		r.Payments.Calls, r.Payments.Charges, r.Payments.Refunds)
	fmt.Fprintf(w, "  oversold %d, double charges %d, unfinished %d, uncompensated %d, stock %+v\n",
		r.Oversold, r.DoubleCharges, r.Unfinished, r.Uncompensated, r.Level)
	if len(r.Violations) > 0 {
		fmt.Fprintf(w, "  VIOLATIONS: %s\n", strings.Join(r.Violations, "; "))
	}
}
