package simnet_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// stuckStore is a store whose writes block until released, and a
// contract sink whose records do: a disk or a ledger that hangs.
type stuckStore struct {
	*simnet.MemStore
	release chan struct{}
	mu      sync.Mutex
	writes  int
}

func (s *stuckStore) Put(key string, value []byte) error {
	<-s.release
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return s.MemStore.Put(key, value)
}

func (s *stuckStore) RecordContract(context.Context, *scheduler.Contract) error {
	<-s.release
	return nil
}

// The market's state loop does no I/O: with its store and its ledger
// stalled, a requester still places an instance and answers queries; what
// it asked to persist is written once the store moves again, and all of
// it by Close.
func TestStalledStoreAndLedgerDoNotStallTheMarket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := &stuckStore{MemStore: simnet.NewMemStore(), release: make(chan struct{})}
		_, nodes := grid(t, 3, func(i int) simnet.NodeOptions {
			if i == 0 {
				return simnet.NodeOptions{Store: stuck, Contracts: stuck}
			}
			return simnet.NodeOptions{}
		})
		v := placed(t, nodes[0].Market, spec("web"))
		if v.Node == "" || v.Node == nodes[0].ID.String() {
			t.Fatalf("placed on %q", v.Node)
		}
		if _, err := nodes[0].Market.Instance("web"); err != nil {
			t.Fatal(err)
		}
		stuck.mu.Lock()
		n := stuck.writes
		stuck.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d writes passed a stalled store", n)
		}
		close(stuck.release)
		waitFor(t, "the queued writes", 10*time.Second, func() bool {
			stuck.mu.Lock()
			defer stuck.mu.Unlock()
			return stuck.writes > 0
		})
		if err := nodes[0].Market.Close(); err != nil {
			t.Fatal(err)
		}
		saved, _ := stuck.MemStore.Load()
		if _, ok := saved["r-"+string(v.InstanceID)]; !ok {
			t.Fatalf("the record of the placed instance was not saved: %v", saved)
		}
	})
}
