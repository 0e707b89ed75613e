package settle

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// The bridge objects join a running ledger and a running market without
// either importing the other, and without late binding: the market is
// built with a Recorder and a Balances over the ledger; the ledger's
// billing loop is built after the market, with a Reach over the market.

// Recorder is the market's scheduler.ContractSink over the ledger: it
// records each contract once per node run (a node that hosts its own
// request is told twice, as provider and as requester; two entries would
// make it bill twice), as a ledger contract billed in slices of the grid's
// slice length, with the signed award and acceptance as evidence.
type Recorder struct {
	l     *ledger.Ledger
	slice time.Duration

	mu   sync.Mutex
	seen map[string]bool // contract digests recorded by this run
}

var _ scheduler.ContractSink = (*Recorder)(nil)

// NewRecorder returns the recorder of contracts into l (slice: the grid's
// slice length).
func NewRecorder(l *ledger.Ledger, slice time.Duration) *Recorder {
	return &Recorder{l: l, slice: slice, seen: map[string]bool{}}
}

// RecordContract appends c as a ledger contract entry; the entry is
// durable when it returns. A canceled context records nothing and is no
// error (the node is stopping).
func (r *Recorder) RecordContract(ctx context.Context, c *scheduler.Contract) error {
	key := string(c.Digest())
	r.mu.Lock()
	dup := r.seen[key]
	r.seen[key] = true
	r.mu.Unlock()
	if dup {
		return nil
	}
	_, err := r.l.AppendContract(ctx, Contract(c, r.slice))
	if err != nil {
		r.mu.Lock()
		delete(r.seen, key)
		r.mu.Unlock()
		if errors.Is(err, context.Canceled) {
			return nil
		}
	}
	return err
}

// Balances is the market's scheduler.BalanceLookup over the ledger.
type Balances struct{ L *ledger.Ledger }

var _ scheduler.BalanceLookup = Balances{}

// Balance returns p's balance in micro-credits (the market's unit; the
// ledger counts pico-credits), rounded toward minus infinity.
func (b Balances) Balance(p peer.ID) (scheduler.Amount, bool) {
	return scheduler.Amount(ledger.MicroFloor(b.L.Balance(p).Balance)), true
}

// Reach is the requester's ledger.Reachability over the market: the
// market's view of the instance (Instances) and the membership (Alive)
// decide whether a receipt's instance was reachable on its provider, by
// ReachVerdict; a slice that began after the requester asked for the
// instance to stop (allowing StopAllowance) is disputed whatever the view.
type Reach struct {
	// Instances is the market's instance view (scheduler.Market.Instances).
	Instances func() []scheduler.InstanceView
	// Alive is the set of members alive now.
	Alive func() map[peer.ID]bool
	// SliceHealth, when set, is what the host reported during the
	// receipt's slice (scheduler.Market.SliceHealth): a slice in which it
	// reported the instance failing (a promise, a crash loop, a failure) or
	// lost is disputed even when the current view is healthy again.
	SliceHealth func(id scheduler.InstanceID, epoch uint64, from, to time.Time) (healthy, known bool, reason string)
}

var _ ledger.Reachability = Reach{}

// Reachable implements ledger.Reachability.
func (m Reach) Reachable(r ledger.Receipt, provider peer.ID) (ledger.Reach, string) {
	var view *scheduler.InstanceView
	for _, v := range m.Instances() {
		if string(v.InstanceID) == r.InstanceID && v.Mine {
			view = &v
			break
		}
	}
	if after, why := afterStop(view, r); after {
		return ledger.Unreachable, why
	}
	v, why := ReachVerdict(view, m.Alive(), r.Epoch, provider)
	if v == ledger.Reachable && view != nil && view.Epoch == r.Epoch && m.SliceHealth != nil {
		healthy, known, reason := m.SliceHealth(view.InstanceID, r.Epoch, time.Unix(0, r.FromNanos), time.Unix(0, r.ToNanos))
		if known && !healthy {
			return ledger.Unreachable, "during the slice: " + reason
		}
	}
	return v, why
}
