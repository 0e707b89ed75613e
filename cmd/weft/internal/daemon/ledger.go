package daemon

import "context"

// ledgerState is the ledger subsystem's part of the Daemon.
type ledgerState struct {
}

// startLedger starts the ledger subsystem, registers its API routes on d.api and
// its closers with d.onClose.
func (d *Daemon) startLedger(ctx context.Context) error {
	return nil
}
