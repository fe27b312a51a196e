package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/cache"
)

// The L1 cache of "Database Design → Caching Strategies" (application-level,
// in memory), with the LRU invalidation strategy: a bounded in-process cache
// with per-entry TTL and an eviction hook.
func ExampleMemory() {
	var evicted []string
	m, err := cache.NewMemory(2, cache.MemoryOptions[string, int]{
		Policy: cache.LRU, Shards: 1,
		OnEvict: func(k string, _ int, r cache.Reason) { evicted = append(evicted, k+" "+r.String()) },
	})
	if err != nil {
		panic(err)
	}
	_ = m.Set("a", 1)
	_ = m.Set("b", 2)
	m.Get("a")        // b is now least recently used
	_ = m.Set("c", 3) // evicts b
	_, ok := m.Get("b")
	fmt.Println("b present:", ok)
	fmt.Println(evicted)
	_, err = cache.NewMemory(0, cache.MemoryOptions[string, int]{})
	fmt.Println(errors.Is(err, cache.ErrInvalidConfig), err)
	// Output:
	// b present: false
	// [b evicted]
	// true cache: invalid configuration: capacity must be positive, got 0
}

// The Cache-Aside pattern of "Database Design → Caching Strategies" (check
// cache → miss → fetch from DB → update cache), with the stampede the guide
// lists as its cost prevented: 50 concurrent misses, one load.
func ExampleAside() {
	store, _ := cache.NewMemory(100, cache.MemoryOptions[string, string]{})
	a, _ := cache.NewAside(store.AsStore(), cache.AsideOptions{TTL: time.Minute, NegativeTTL: time.Second})
	var loads atomic.Int32
	load := func(ctx context.Context, id string) (string, error) {
		loads.Add(1)
		time.Sleep(10 * time.Millisecond) // a slow database
		if id == "42" {
			return "Ada", nil
		}
		return "", cache.ErrNotFound
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _, _ = a.Get(context.Background(), "42", load) })
	}
	wg.Wait()
	v, _ := a.Get(context.Background(), "42", load)
	fmt.Println(v, "loads:", loads.Load())
	for range 3 {
		_, err := a.Get(context.Background(), "7", load)
		fmt.Println(errors.Is(err, cache.ErrNotFound))
	}
	fmt.Println("loads:", loads.Load(), "(not-found remembered)")
	// Output:
	// Ada loads: 1
	// true
	// true
	// true
	// loads: 2 (not-found remembered)
}

// db is a toy source of truth for the examples.
type db struct {
	mu   sync.Mutex
	rows map[string]int
	log  []string
}

func (d *db) Load(_ context.Context, k string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.rows[k]
	if !ok {
		return 0, cache.ErrNotFound
	}
	return v, nil
}

func (d *db) Write(_ context.Context, k string, v int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows[k] = v
	d.log = append(d.log, fmt.Sprintf("write %s=%d", k, v))
	return nil
}

func (d *db) Delete(_ context.Context, k string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.rows, k)
	return nil
}

func (d *db) WriteBatch(_ context.Context, b []cache.Write[string, int]) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for _, w := range b {
		d.rows[w.Key] = w.Value
		parts = append(parts, fmt.Sprintf("%s=%d", w.Key, w.Value))
	}
	sort.Strings(parts)
	d.log = append(d.log, "batch "+strings.Join(parts, " "))
	return nil
}

// The Write-Through pattern of "Database Design → Caching Strategies", with
// read-through beside it over one store: reads load misses, writes reach the
// database before the cache.
func ExampleWriteThrough() {
	d := &db{rows: map[string]int{"stock:1": 5}}
	store, _ := cache.NewMemory(100, cache.MemoryOptions[string, int]{})
	r, _ := cache.NewReadThrough[string, int](store.AsStore(), d, cache.AsideOptions{})
	w, _ := cache.NewWriteThrough[string, int](store.AsStore(), d, 0)
	ctx := context.Background()
	v, _ := r.Get(ctx, "stock:1")
	fmt.Println("read", v)
	_ = w.Set(ctx, "stock:1", 4)
	v, _ = r.Get(ctx, "stock:1")
	fmt.Println("read", v, "hits", r.Stats().Hits)
	fmt.Println(d.log)
	// Output:
	// read 5
	// read 4 hits 1
	// [write stock:1=4]
}

// The Write-Behind pattern of "Database Design → Caching Strategies" (write
// to cache → batch to DB later): writes are acknowledged after the cache,
// coalesced, and flushed in one batch; Close drains the queue.
func ExampleWriteBehind() {
	d := &db{rows: map[string]int{}}
	store, _ := cache.NewMemory(100, cache.MemoryOptions[string, int]{})
	w, _ := cache.NewWriteBehind[string, int](store.AsStore(), d, cache.WriteBehindOptions{Interval: time.Hour})
	ctx := context.Background()
	for i := range 5 {
		_ = w.Set(ctx, "views:home", i+1) // coalesces into one write
	}
	_ = w.Set(ctx, "views:about", 1)
	v, _ := store.Get("views:home")
	fmt.Println("cache has", v, "queued", w.Stats().Queued)
	if err := w.Close(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println(d.log)
	// Output:
	// cache has 5 queued 2
	// [batch views:about=1 views:home=5]
}

// The Refresh-Ahead pattern of "Database Design → Caching Strategies"
// (update the cache before expiration): a value read after 80% of its TTL
// is reloaded in the background, so a steadily read key never misses. The
// store and the cache read one clock, which the example moves by hand.
func ExampleRefreshAhead() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64 // read by the background reload too
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	var version atomic.Int32
	loader := cache.LoaderFunc[string, int32](func(context.Context, string) (int32, error) {
		return version.Add(1), nil
	})
	store, _ := cache.NewMemory(10, cache.MemoryOptions[string, int32]{Now: now})
	r, _ := cache.NewRefreshAhead[string, int32](store.AsStore(), loader,
		cache.RefreshAheadOptions{TTL: time.Minute, Now: now})
	ctx := context.Background()
	v, _ := r.Get(ctx, "config")
	fmt.Println("first", v)
	elapsed.Store(int64(50 * time.Second)) // past 80% of the TTL
	v, _ = r.Get(ctx, "config")            // still 1, starts a reload
	fmt.Println("stale while reloading", v)
	// Close waits for the reload in flight (this loader does not block),
	// so what follows does not depend on how fast it ran.
	_ = r.Close(ctx)
	elapsed.Store(int64(70 * time.Second)) // past the first value's expiry
	v, _ = r.Get(ctx, "config")
	fmt.Println("after", v, "misses", r.Stats().Misses)
	// Output:
	// first 1
	// stale while reloading 1
	// after 2 misses 1
}
