package nodecmd

import (
	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

func init() {
	var apiAddr string
	var allowRemote bool
	registerNodeFlags(nodeFlagHook{
		add: func(fs *pflag.FlagSet) {
			fs.StringVar(&apiAddr, "api", config.Default().Node.API, "local API address HOST:PORT (loopback unless --api-allow-remote; port 0 picks a free one) [node.api]")
			fs.BoolVar(&allowRemote, "api-allow-remote", false, "let --api listen on a non-loopback address, reachable from the network [node.api_allow_remote]")
		},
		apply: func(fs *pflag.FlagSet, c *config.Config) error {
			if fs.Changed("api") {
				c.Node.API = apiAddr
			}
			if fs.Changed("api-allow-remote") {
				c.Node.APIAllowRemote = allowRemote
			}
			return nil
		},
	})
}
