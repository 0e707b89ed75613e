package daemon

import (
	"context"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/content"
)

// startRecipes opens the content store and its transfer service
// (package content) and registers its routes, metrics and status.
func (d *Daemon) startRecipes(ctx context.Context) error {
	c, err := content.Open(ctx, d.cfg.Node.DataDir, d.cfg.Recipes, d.node, d.log.With("subsystem", "recipes"))
	if err != nil {
		return err
	}
	d.content = c
	d.onClose(c.Close)
	c.Metrics(d.metrics)
	c.Routes(d.api)
	d.statusExtras = append(d.statusExtras, func(st *api.Status) { st.Content = c.Status() })
	return nil
}
