package daemon

import "context"

// recipesState is the recipes subsystem's part of the Daemon.
type recipesState struct {
}

// startRecipes starts the recipes subsystem, registers its API routes on d.api and
// its closers with d.onClose.
func (d *Daemon) startRecipes(ctx context.Context) error {
	return nil
}
