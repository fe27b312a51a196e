package replica

import (
	"slices"
	"strings"
	"sync"
)

// Store is a node's local storage: records by key. A [Node] serialises its
// own calls, so an implementation needs no transactions, but it must be
// safe for concurrent use when several nodes or readers share it.
// [MemStore] keeps records in memory; [BoltStore] on disk.
type Store interface {
	// Get returns the record of key and whether there is one.
	Get(key string) (Record, bool, error)
	// Put stores r as the record of key, replacing any.
	Put(key string, r Record) error
	// Delete removes the record of key, if any.
	Delete(key string) error
	// Range calls fn for every record in key order until fn returns false.
	// fn must not call the store.
	Range(fn func(key string, r Record) bool) error
}

// MemStore is a [Store] in memory: what a crashed process loses. The zero
// value is an empty store ready to use; it is safe for concurrent use.
type MemStore struct {
	mu sync.Mutex        // guards m
	m  map[string]Record // records are never modified once stored
}

var _ Store = (*MemStore)(nil)

// Get returns the record of key and whether there is one.
func (s *MemStore) Get(key string) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	return r, ok, nil
}

// Put stores r as the record of key.
func (s *MemStore) Put(key string, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Record)
	}
	s.m[key] = r
	return nil
}

// Delete removes the record of key.
func (s *MemStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Range calls fn for every record in key order until fn returns false, on
// a snapshot taken when it starts.
func (s *MemStore) Range(fn func(key string, r Record) bool) error {
	type entry struct {
		key string
		r   Record
	}
	s.mu.Lock()
	snap := make([]entry, 0, len(s.m))
	for k, r := range s.m {
		snap = append(snap, entry{k, r})
	}
	s.mu.Unlock()
	slices.SortFunc(snap, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	for _, e := range snap {
		if !fn(e.key, e.r) {
			break
		}
	}
	return nil
}
