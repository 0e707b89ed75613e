package daemon

import (
	"context"
	"errors"

	"github.com/weftgrid/weft/scheduler/schedrun"
)

// marketBackends returns what the market runs instances with: the
// partition manager (d.parts, from startPartitions) and the recipes
// subsystem's content store, grid fetch and announcements.
func (d *Daemon) marketBackends(ctx context.Context) (schedrun.Runtime, schedrun.Content, error) {
	if d.parts == nil {
		return nil, schedrun.Content{}, errors.New("market: the partitions are not running")
	}
	if d.content == nil {
		return nil, schedrun.Content{}, errors.New("market: the recipe store is not open")
	}
	return d.parts, schedrun.Content{Store: d.content.Store, Fetch: d.content.Fetch, Announce: d.content.Announce}, nil
}
