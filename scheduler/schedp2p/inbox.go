package schedp2p

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/weftgrid/weft/scheduler"
)

// inbox holds what other peers sent until the market's loop takes it: one
// FIFO per source, taken in turn (round robin), bounded per source and in
// all, in messages and in bytes. A source sending faster than the loop
// takes its messages fills only its own FIFO: its newest are dropped, and
// the messages of other sources still reach the loop, each source getting
// its turn. When the bounds in all are reached, the source holding the most
// bytes loses its oldest message to make room (a crowd of flooders cannot
// push a quiet peer out).
type inbox struct {
	mu         sync.Mutex
	queues     map[string]*srcQueue
	ring       []string // sources with something queued, in turn order
	msgs       int
	bytes      int
	wake       chan struct{}
	out        chan scheduler.Inbound
	dropped    *atomic.Uint64
	peerMsgs   int
	peerBytes  int
	totalMsgs  int
	totalBytes int
}

type srcQueue struct {
	msgs  []scheduler.Inbound
	bytes int
}

func newInbox(dropped *atomic.Uint64) *inbox {
	return &inbox{
		queues: map[string]*srcQueue{}, wake: make(chan struct{}, 1), out: make(chan scheduler.Inbound),
		dropped: dropped, peerMsgs: PeerInbound, peerBytes: PeerInboundBytes, totalMsgs: InboundQueue, totalBytes: InboundBytes,
	}
}

// put queues in under src (the peer it came from, or for topic messages
// their origin). It never blocks.
func (b *inbox) put(src string, in scheduler.Inbound) {
	size := len(in.Data)
	b.mu.Lock()
	q := b.queues[src]
	if q == nil {
		q = &srcQueue{}
	}
	if len(q.msgs) >= b.peerMsgs || q.bytes+size > b.peerBytes {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	for b.msgs >= b.totalMsgs || b.bytes+size > b.totalBytes {
		victim := b.largest()
		if victim == "" || victim == src || b.queues[victim].bytes <= q.bytes+size {
			b.mu.Unlock()
			b.dropped.Add(1)
			return
		}
		b.dropOldest(victim)
	}
	if len(q.msgs) == 0 {
		b.queues[src] = q
		b.ring = append(b.ring, src)
	}
	q.msgs = append(q.msgs, in)
	q.bytes += size
	b.msgs++
	b.bytes += size
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// largest names the source holding the most bytes ("" when none).
func (b *inbox) largest() string {
	best, most := "", -1
	for src, q := range b.queues {
		if q.bytes > most {
			best, most = src, q.bytes
		}
	}
	return best
}

func (b *inbox) dropOldest(src string) {
	q := b.queues[src]
	b.remove(src, q)
	b.dropped.Add(1)
}

// remove takes the oldest message of src's queue q.
func (b *inbox) remove(src string, q *srcQueue) scheduler.Inbound {
	in := q.msgs[0]
	q.msgs[0] = scheduler.Inbound{}
	q.msgs = q.msgs[1:]
	q.bytes -= len(in.Data)
	b.msgs--
	b.bytes -= len(in.Data)
	if len(q.msgs) == 0 {
		delete(b.queues, src)
		for i, s := range b.ring {
			if s == src {
				b.ring = append(b.ring[:i], b.ring[i+1:]...)
				break
			}
		}
	}
	return in
}

// next takes the oldest message of the source whose turn it is.
func (b *inbox) next() (scheduler.Inbound, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) == 0 {
		return scheduler.Inbound{}, false
	}
	src := b.ring[0]
	in := b.remove(src, b.queues[src])
	if len(b.ring) > 0 && b.ring[0] == src {
		// Its queue is not empty: its next turn comes after the others'.
		b.ring = append(b.ring[1:], src)
	}
	return in, true
}

// run hands the queued messages to out, in turn, until ctx ends.
func (b *inbox) run(ctx context.Context) {
	for {
		in, ok := b.next()
		if !ok {
			select {
			case <-b.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case b.out <- in:
		case <-ctx.Done():
			return
		}
	}
}
