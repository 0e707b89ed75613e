package daemon

import (
	"context"
	"errors"
)

// marketBackends returns what the market runs instances with: the
// partition manager (d.parts, from startPartitions) and the recipes
// subsystem's content store, grid fetch and announcements.
func (d *Daemon) marketBackends(ctx context.Context) (partitionRuntime, marketContent, error) {
	if d.parts == nil {
		return nil, marketContent{}, errors.New("market: the partitions are not running")
	}
	if d.recipesStore == nil {
		return nil, marketContent{}, errors.New("market: the recipe store is not open")
	}
	return d.parts, marketContent{st: d.recipesStore, fetch: d.recipesFetch, announce: d.recipesAnnounce}, nil
}
