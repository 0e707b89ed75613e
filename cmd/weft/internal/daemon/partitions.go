package daemon

import "context"

// partitionsState is the partitions subsystem's part of the Daemon.
type partitionsState struct {
}

// startPartitions starts the partitions subsystem, registers its API routes on d.api and
// its closers with d.onClose.
func (d *Daemon) startPartitions(ctx context.Context) error {
	return nil
}
