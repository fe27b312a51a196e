package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// fakeDB is the source of truth the pattern tests use: a map with call
// counters, an optional delay and injectable failures.
type fakeDB struct {
	mu      sync.Mutex
	data    map[string]int
	loads   int
	writes  int // single writes and writes inside batches
	batches [][]Write[string, int]
	delay   time.Duration
	fail    error // returned by every call while set
}

func newFakeDB() *fakeDB { return &fakeDB{data: map[string]int{}} }

var errSource = errors.New("source unavailable")

func (d *fakeDB) Load(ctx context.Context, key string) (int, error) {
	d.mu.Lock()
	d.loads++
	delay, fail := d.delay, d.fail
	d.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if fail != nil {
		return 0, fail
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.data[key]
	if !ok {
		return 0, fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	return v, nil
}

func (d *fakeDB) Write(_ context.Context, key string, v int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.writes++
	d.data[key] = v
	return nil
}

func (d *fakeDB) Delete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.writes++
	delete(d.data, key)
	return nil
}

func (d *fakeDB) WriteBatch(_ context.Context, batch []Write[string, int]) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.batches = append(d.batches, append([]Write[string, int](nil), batch...))
	for _, w := range batch {
		d.writes++
		if w.Delete {
			delete(d.data, w.Key)
		} else {
			d.data[w.Key] = w.Value
		}
	}
	return nil
}

func (d *fakeDB) set(k string, v int) {
	d.mu.Lock()
	d.data[k] = v
	d.mu.Unlock()
}

func (d *fakeDB) get(k string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.data[k]
	return v, ok
}

func (d *fakeDB) setFail(err error) {
	d.mu.Lock()
	d.fail = err
	d.mu.Unlock()
}

func (d *fakeDB) counts() (loads, writes, batches int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loads, d.writes, len(d.batches)
}

var (
	_ Loader[string, int]      = (*fakeDB)(nil)
	_ Writer[string, int]      = (*fakeDB)(nil)
	_ BatchWriter[string, int] = (*fakeDB)(nil)
)

func newMem(tb interface{ Fatal(...any) }, capacity int) *Memory[string, int] {
	m, err := NewMemory(capacity, MemoryOptions[string, int]{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
