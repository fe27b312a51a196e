package shard

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// KV is one key and its value.
type KV struct {
	Key   string
	Value []byte
}

// Store is one shard's storage, as the [Router] and [Migration] use it: a
// database, a table, a Redis prefix. [MemStore] and [github.com/sysdesign-go/sysdesign/shard/redisshard.Store]
// implement it; wrap a real database by implementing it.
//
// Implementations must be safe for concurrent use and must honour ctx: a
// cross-shard query waits for every shard's call to return, so a store that
// ignores cancellation delays the query past its deadline.
type Store interface {
	// Get returns key's value, or an error wrapping [ErrNotFound].
	Get(ctx context.Context, key string) ([]byte, error)
	// Put sets key's value.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Scan returns the keys k with start ≤ k < end in ascending order, at
	// most limit of them (limit ≤ 0: all). An empty end means no upper
	// bound. The router and the migration page through a store by Scan;
	// a page that ends before its start fails them with [ErrStoreScan].
	Scan(ctx context.Context, start, end string, limit int) ([]KV, error)
}

// MemStore is an in-memory [Store] for tests, examples and the lab. It can
// be slowed down ([MemStore.SetDelay]) or broken ([MemStore.SetFault]) to
// exercise cross-shard deadlines and partial failures. The zero value is an
// empty store ready to use; it is safe for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	data   map[string][]byte // guarded by mu
	sorted []string          // sorted keys of data; nil when stale
	delay  time.Duration
	fault  error
}

var _ Store = (*MemStore)(nil)

// SetDelay makes every later call wait d (or until its context ends) before
// it runs.
func (m *MemStore) SetDelay(d time.Duration) {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
}

// SetFault makes every later call fail with err; nil restores the store.
func (m *MemStore) SetFault(err error) {
	m.mu.Lock()
	m.fault = err
	m.mu.Unlock()
}

// Len returns the number of keys.
func (m *MemStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

// enter applies the delay and fault; it returns with mu held on success.
func (m *MemStore) enter(ctx context.Context) error {
	m.mu.Lock()
	d, fault := m.delay, m.fault
	m.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if fault != nil {
		return fault
	}
	m.mu.Lock()
	return nil
}

// Get implements [Store].
func (m *MemStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.enter(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	v, ok := m.data[key]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(v), nil
}

// Put implements [Store].
func (m *MemStore) Put(ctx context.Context, key string, value []byte) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = make(map[string][]byte)
	}
	if _, ok := m.data[key]; !ok {
		m.sorted = nil
	}
	m.data[key] = slices.Clone(value)
	return nil
}

// Delete implements [Store].
func (m *MemStore) Delete(ctx context.Context, key string) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.data[key]; ok {
		delete(m.data, key)
		m.sorted = nil
	}
	return nil
}

// Scan implements [Store].
func (m *MemStore) Scan(ctx context.Context, start, end string, limit int) ([]KV, error) {
	if err := m.enter(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if m.sorted == nil {
		m.sorted = make([]string, 0, len(m.data))
		for k := range m.data {
			m.sorted = append(m.sorted, k)
		}
		sort.Strings(m.sorted)
	}
	i, _ := slices.BinarySearch(m.sorted, start)
	var out []KV
	for ; i < len(m.sorted) && (limit <= 0 || len(out) < limit); i++ {
		k := m.sorted[i]
		if end != "" && strings.Compare(k, end) >= 0 {
			break
		}
		out = append(out, KV{Key: k, Value: slices.Clone(m.data[k])})
	}
	return out, nil
}
