package daemon

import (
	"context"
	"errors"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/scheduler"
)

// ledgerContracts records the market's contracts in the ledger, once per
// contract and node (a node that hosts its own request is told twice: as
// provider and as requester; two entries would make it bill twice).
type ledgerContracts struct {
	d    *Daemon
	mu   sync.Mutex
	seen map[string]bool // contract digests recorded by this run
}

var _ scheduler.ContractSink = (*ledgerContracts)(nil)

func newLedgerContracts(d *Daemon) *ledgerContracts {
	return &ledgerContracts{d: d, seen: map[string]bool{}}
}

// RecordContract appends c as a ledger contract entry, with the signed
// award and acceptance as evidence. Prices are the market's hourly list
// (micro-credits per core-hour, per GiB-hour of memory and of disk).
func (l *ledgerContracts) RecordContract(ctx context.Context, c *scheduler.Contract) error {
	if l.d.ledger == nil {
		return nil
	}
	key := string(c.Digest())
	l.mu.Lock()
	dup := l.seen[key]
	l.seen[key] = true
	l.mu.Unlock()
	if dup {
		return nil
	}
	_, err := l.d.appendContract(ctx, settle.Contract(c, l.d.ledgerSlice()))
	if err != nil {
		l.mu.Lock()
		delete(l.seen, key)
		l.mu.Unlock()
		if errors.Is(err, context.Canceled) {
			return nil
		}
	}
	return err
}

// ledgerBalances gives requesters' balances from the ledger.
type ledgerBalances struct{ d *Daemon }

var _ scheduler.BalanceLookup = ledgerBalances{}

// Balance returns the requester's ledger balance.
func (b ledgerBalances) Balance(p peer.ID) (scheduler.Amount, bool) {
	v, ok := b.d.ledgerBalance(p)
	return scheduler.Amount(v), ok
}
