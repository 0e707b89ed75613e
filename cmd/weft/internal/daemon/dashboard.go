package daemon

import "context"

// dashboardState is the dashboard subsystem's part of the Daemon.
type dashboardState struct {
}

// startDashboard starts the dashboard subsystem, registers its API routes on d.api and
// its closers with d.onClose.
func (d *Daemon) startDashboard(ctx context.Context) error {
	return nil
}
