package daemon

import (
	"errors"

	"github.com/weftgrid/weft/cmd/weft/internal/content"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler/schedrun"
)

// marketBackends returns what the market runs instances with: the
// partition manager and the recipes subsystem's content store, grid fetch
// and announcements.
func marketBackends(parts *partition.Manager, c *content.Service) (schedrun.Runtime, schedrun.Content, error) {
	if parts == nil {
		return nil, schedrun.Content{}, errors.New("market: the partitions are not running")
	}
	if c == nil {
		return nil, schedrun.Content{}, errors.New("market: the recipe store is not open")
	}
	return parts, schedrun.Content{Store: c.Store, Fetch: c.Fetch, Announce: c.Announce}, nil
}
