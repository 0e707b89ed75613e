package scheduler

import (
	"context"
	"sync"
)

// effect is I/O the state loop asks for and does not wait for: a store
// write or delete, or a contract to record in the ledger.
type effect struct {
	key      string
	value    []byte // nil with del
	del      bool
	contract *Contract
}

// effects is the queue between the state loop and the goroutine that
// performs its I/O (runEffects), in the order the loop queued it. The
// queue is unbounded: the loop never blocks on a slow disk or ledger, and
// nothing it asked to persist is dropped.
type effects struct {
	mu   sync.Mutex
	q    []effect
	wake chan struct{}
	done chan struct{} // closed when runEffects has drained the queue after stop
	stop chan struct{}
}

func newEffects() *effects {
	return &effects{wake: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
}

// queue adds e; it never blocks.
func (q *effects) queue(e effect) {
	q.mu.Lock()
	q.q = append(q.q, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *effects) take() []effect {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.q
	q.q = nil
	return out
}

// runEffects performs the queued I/O until the market closes, then what
// is still queued (a clean shutdown persists everything the loop asked
// for; records are made with a context that outlives the market's).
func (m *Market) runEffects() {
	q := m.io
	defer close(q.done)
	ctx := context.WithoutCancel(m.ctx)
	for {
		for _, e := range q.take() {
			m.perform(ctx, e)
		}
		select {
		case <-q.wake:
		case <-q.stop:
			for _, e := range q.take() {
				m.perform(ctx, e)
			}
			return
		}
	}
}

func (m *Market) perform(ctx context.Context, e effect) {
	switch {
	case e.contract != nil:
		if err := m.d.Contracts.RecordContract(ctx, e.contract); err != nil {
			m.log.Warn("market: recording contract failed", "err", err)
		}
	case e.del:
		if err := m.d.Store.Delete(e.key); err != nil {
			m.log.Warn("market: deleting a stored entry failed", "key", e.key, "err", err)
		}
	default:
		if err := m.d.Store.Put(e.key, e.value); err != nil {
			m.log.Warn("market: saving a stored entry failed", "key", e.key, "err", err)
		}
	}
}

// recordContract queues c for the ledger (Deps.Contracts).
func (m *Market) recordContract(c *Contract) {
	if m.d.Contracts != nil {
		m.io.queue(effect{contract: c})
	}
}
