package daemon

import "context"

// p2pState is the p2p subsystem's part of the Daemon.
type p2pState struct {
}

// startP2P starts the p2p subsystem, registers its API routes on d.api and
// its closers with d.onClose.
func (d *Daemon) startP2P(ctx context.Context) error {
	return nil
}
