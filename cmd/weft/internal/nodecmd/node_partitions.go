package nodecmd

import (
	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

func init() {
	var count, portBase int
	var keep bool
	registerNodeFlags(nodeFlagHook{
		add: func(fs *pflag.FlagSet) {
			def := config.Default().Partitions
			fs.IntVar(&count, "partitions", def.Count, "number of partitions (slots for instances) on this node; 0: a requester-only node that never bids [partitions.count]")
			fs.IntVar(&portBase, "port-base", def.PortBase, "first TCP port of partition 0 (each partition gets ports_per_partition ports) [partitions.port_base]")
			fs.BoolVar(&keep, "keep-instances", def.KeepOnStop, "on SIGTERM leave instances running and do not leave the grid, to restart in place (upgrades) [partitions.keep_on_stop]")
		},
		apply: func(fs *pflag.FlagSet, c *config.Config) error {
			if fs.Changed("partitions") {
				c.Partitions.Count = count
			}
			if fs.Changed("port-base") {
				c.Partitions.PortBase = portBase
			}
			if fs.Changed("keep-instances") {
				c.Partitions.KeepOnStop = keep
			}
			return nil
		},
	})
}
