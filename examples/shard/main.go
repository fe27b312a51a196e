// Command shard walks through database sharding with the shard package:
// it loads keys into shards, adds a shard and prints how many keys each
// placement algorithm would move, migrates the data online to the new
// layout while a writer keeps writing, and runs cross-shard queries.
//
// Guide: "Database Design → Database Sharding" (sharding strategies, data
// rebalancing, cross-shard queries).
//
// By default the shards are in memory. With -redis ADDR each shard is a key
// prefix on that Redis server (the keys are deleted at the end).
//
//	go run ./examples/shard
//	go run ./examples/shard -redis 127.0.0.1:6379 -keys 20000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/redisshard"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("shard", flag.ContinueOnError)
	n := fs.Int("shards", 4, "shards before the change (one is added)")
	keys := fs.Int("keys", 10_000, "keys to load")
	addr := fs.String("redis", "", "Redis address; each shard becomes a key prefix there (default: in-memory shards)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *keys < 1 {
		return fmt.Errorf("-shards and -keys must be positive (got %d, %d)", *n, *keys)
	}
	nodes := make([]shard.Node, *n+1)
	for i := range nodes {
		nodes[i] = shard.Node{Name: fmt.Sprintf("s%d", i), Weight: 1}
	}
	keyOf := func(i int) string { return fmt.Sprintf("order:%07d", i) }
	allKeys := func(yield func(string) bool) {
		for i := range *keys {
			if !yield(keyOf(i)) {
				return
			}
		}
	}

	// 1. Keys moved when one shard is added, per algorithm.
	fmt.Fprintf(out, "Adding shard %s to %d shards, %d keys (ideal: %.1f%% move)\n", nodes[*n].Name, *n, *keys, 100/float64(*n+1))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "algorithm\tmoved\t× ideal\t")
	builders := []struct {
		name  string
		build func([]shard.Node) (shard.Placement, error)
	}{
		{"modulo", func(n []shard.Node) (shard.Placement, error) { return shard.NewModulo(n) }},
		{"ring", func(n []shard.Node) (shard.Placement, error) { return shard.NewRing(n, shard.RingOptions{}) }},
		{"bounded", func(n []shard.Node) (shard.Placement, error) { return shard.NewBounded(n, shard.BoundedOptions{}) }},
		{"jump", func(n []shard.Node) (shard.Placement, error) { return shard.NewJump(n) }},
		{"rendezvous", func(n []shard.Node) (shard.Placement, error) { return shard.NewRendezvous(n) }},
		{"maglev", func(n []shard.Node) (shard.Placement, error) { return shard.NewMaglev(n, shard.MaglevOptions{}) }},
	}
	var before, after shard.Placement
	for _, b := range builders {
		p1, err := b.build(nodes[:*n])
		if err != nil {
			return err
		}
		p2, err := b.build(nodes)
		if err != nil {
			return err
		}
		plan, err := shard.PlanMoves(p1, p2, allKeys, shard.PlanOptions{CountOnly: true})
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.2f\t\n", b.name, 100*plan.Fraction(), plan.Fraction()*float64(*n+1))
		if b.name == "jump" {
			before, after = p1, p2
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// 2. Stores: in memory, or one Redis key prefix per shard.
	stores := map[string]shard.Store{}
	if *addr != "" {
		client := redis.NewClient(&redis.Options{Addr: *addr})
		defer client.Close()
		prefix := fmt.Sprintf("sysdesign-example-shard:%d:", time.Now().UnixNano())
		defer cleanup(client, prefix)
		for _, nd := range nodes {
			s, err := redisshard.NewStore(client, prefix+nd.Name+":", redisshard.Options{})
			if err != nil {
				return err
			}
			stores[nd.Name] = s
		}
		fmt.Fprintf(out, "\nShards are Redis key prefixes %s<shard>: on %s\n", prefix, *addr)
	} else {
		for _, nd := range nodes {
			stores[nd.Name] = &shard.MemStore{}
		}
	}
	r, err := shard.NewRouter(before, stores, shard.RouterOptions{QueryTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	for i := range *keys {
		if err := r.Put(ctx, keyOf(i), []byte(strconv.Itoa(i%1000))); err != nil {
			return err
		}
	}

	// 3. Online migration to the new layout, with a writer running.
	m, err := shard.NewMigration(before, after, stores, shard.MigrationOptions{})
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				writes = i
				return
			default:
			}
			if err := m.Put(ctx, keyOf(i%*keys), []byte("999")); err != nil {
				writes = i
				return
			}
		}
	})
	start := time.Now()
	copyErr := m.Copy(ctx)
	close(stop)
	wg.Wait()
	if copyErr != nil {
		return copyErr
	}
	rep, err := m.Verify(ctx)
	if err != nil {
		return err
	}
	if err := m.Switch(); err != nil {
		return fmt.Errorf("%w (%d keys missing, e.g. %v)", err, rep.Missing, rep.MissingKeys)
	}
	deleted, err := m.Cleanup(ctx)
	if err != nil {
		return err
	}
	st := m.Stats()
	fmt.Fprintf(out, "\nMigrated to %d shards with jump hashing in %v: %d keys copied, %d writes during the move, %d missing at verify, %d old copies deleted\n",
		*n+1, time.Since(start).Round(time.Millisecond), st.Copied, writes, rep.Missing, deleted)
	fmt.Fprintln(out, "(keys copied can be fewer than old copies deleted: the writer's writes during the move put the rest on their new shard first, and a copy never overwrites a value already there)")

	// 4. Cross-shard queries on the new layout.
	r, err = m.Router(shard.RouterOptions{QueryTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	count, err := r.Count(ctx, "", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nCount over all shards: %d keys\n", count)
	first, err := r.Scan(ctx, "order:0000100", "", 3)
	if err != nil {
		return err
	}
	fmt.Fprint(out, "Ordered scan from order:0000100, limit 3:")
	for _, kv := range first {
		fmt.Fprintf(out, " %s", kv.Key)
	}
	fmt.Fprintln(out)
	byValue := func(a, b shard.KV) int {
		x, _ := strconv.Atoi(string(a.Value))
		y, _ := strconv.Atoi(string(b.Value))
		return y - x
	}
	top, err := r.TopN(ctx, "", "", 3, byValue)
	var partial *shard.PartialError
	if errors.As(err, &partial) {
		fmt.Fprintf(out, "partial result, failed shards: %v\n", partial.Failed)
	} else if err != nil {
		return err
	}
	fmt.Fprint(out, "Top 3 by value:")
	for _, kv := range top {
		fmt.Fprintf(out, " %s=%s", kv.Key, kv.Value)
	}
	fmt.Fprintln(out)
	owners := map[string]int{}
	for k := range allKeys {
		name, err := r.ShardFor(k)
		if err != nil {
			return err
		}
		owners[name]++
	}
	fmt.Fprint(out, "Keys per shard:")
	for _, name := range slices.Sorted(maps.Keys(owners)) {
		fmt.Fprintf(out, " %s=%d", name, owners[name])
	}
	fmt.Fprintln(out)
	return nil
}

// cleanup deletes the example's keys with SCAN (never KEYS or FLUSHDB: the
// server may be shared).
func cleanup(c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
	}
	if len(batch) > 0 {
		_ = c.Unlink(ctx, batch...).Err()
	}
}
