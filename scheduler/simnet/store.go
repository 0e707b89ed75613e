package simnet

import (
	"maps"
	"sync"

	"github.com/weftgrid/weft/scheduler"
)

// MemStore is an in-memory scheduler.Store.
type MemStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ scheduler.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// Put implements scheduler.Store.
func (s *MemStore) Put(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements scheduler.Store.
func (s *MemStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Load implements scheduler.Store.
func (s *MemStore) Load() (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}
