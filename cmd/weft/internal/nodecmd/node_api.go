package nodecmd

import (
	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

func init() {
	var apiAddr string
	registerNodeFlags(nodeFlagHook{
		add: func(fs *pflag.FlagSet) {
			fs.StringVar(&apiAddr, "api", config.Default().Node.API, "local API address HOST:PORT (loopback; port 0 picks a free one) [node.api]")
		},
		apply: func(fs *pflag.FlagSet, c *config.Config) error {
			if fs.Changed("api") {
				c.Node.API = apiAddr
			}
			return nil
		},
	})
}
