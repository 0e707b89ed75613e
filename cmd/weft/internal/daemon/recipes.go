package daemon

import (
	"context"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/content"
	"github.com/weftgrid/weft/p2p"
)

// newRecipes opens the recipes subsystem — the content store and, with
// node (nil in tests), its transfer service over p2p (package content) —
// and registers its routes and metrics.
func newRecipes(ctx context.Context, e env, node *p2p.Node) (*content.Service, error) {
	c, err := content.Open(ctx, e.cfg.Node.DataDir, e.cfg.Recipes, node, e.log.With("subsystem", "recipes"))
	if err != nil {
		return nil, err
	}
	e.onClose(c.Close)
	c.Metrics(e.metrics)
	c.Routes(e.api)
	return c, nil
}

// recipesStatus fills the "content" section of GET /v1/status.
func recipesStatus(c *content.Service) func(*api.Status) {
	return func(st *api.Status) { st.Content = c.Status() }
}
