package nodecmd

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

// Flags of 'weft node' for the [node] section's network, membership and log
// settings. Each mirrors a TOML key (docs/config.md).
func init() {
	var (
		listen, bootstrap, labels     []string
		gridFile, preset, level, form string
		mdns, transport, reach        string
		relays                        []string
	)
	def := config.Default().Node
	registerNodeFlags(nodeFlagHook{
		add: func(fs *pflag.FlagSet) {
			fs.StringArrayVar(&listen, "listen", nil, "libp2p listen multiaddr, repeatable (default TCP+QUIC on port 4001) [node.listen]")
			fs.StringArrayVar(&bootstrap, "bootstrap", nil, "multiaddr ending in /p2p/<peer-id> to join through, repeatable [node.bootstrap]")
			fs.StringVar(&gridFile, "grid", "", "private grid file from 'weft grid init' (default: the public grid) [node.grid]")
			fs.StringVar(&preset, "preset", def.Preset, "membership timings: lan, wan or local (see docs/p2p.md) [node.preset]")
			fs.StringVar(&level, "log-level", def.LogLevel, "log level: debug, info, warn or error [node.log_level]")
			fs.StringVar(&form, "log-format", def.LogFormat, "log format: text or json [node.log_format]")
			fs.StringVar(&mdns, "mdns", def.MDNS, "mDNS LAN discovery: auto (off with --preset local), on or off [node.mdns]")
			fs.StringVar(&transport, "memberlist-transport", def.MemberlistTransport, "membership transport: libp2p or net (comparison only) [node.memberlist_transport]")
			fs.StringVar(&reach, "reachability", def.Reachability, "auto, public (serve relays on any address) or private (behind NAT: reserve relay slots) [node.reachability]")
			fs.StringArrayVar(&relays, "relay", nil, "static relay multiaddr ending in /p2p/<peer-id>, repeatable [node.relays]")
			fs.StringArrayVar(&labels, "label", nil, "KEY=VALUE label advertised to the grid, repeatable [node.labels]")
		},
		apply: func(fs *pflag.FlagSet, c *config.Config) error {
			if fs.Changed("listen") {
				c.Node.Listen = listen
			}
			if fs.Changed("bootstrap") {
				c.Node.Bootstrap = bootstrap
			}
			if fs.Changed("grid") {
				c.Node.Grid = gridFile
			}
			if fs.Changed("preset") {
				c.Node.Preset = preset
			}
			if fs.Changed("log-level") {
				c.Node.LogLevel = level
			}
			if fs.Changed("log-format") {
				c.Node.LogFormat = form
			}
			if fs.Changed("mdns") {
				c.Node.MDNS = mdns
			}
			if fs.Changed("memberlist-transport") {
				c.Node.MemberlistTransport = transport
			}
			if fs.Changed("reachability") {
				c.Node.Reachability = reach
			}
			if fs.Changed("relay") {
				c.Node.Relays = relays
			}
			if fs.Changed("label") {
				if c.Node.Labels == nil {
					c.Node.Labels = map[string]string{}
				}
				for _, l := range labels {
					k, v, ok := strings.Cut(l, "=")
					if !ok || k == "" {
						return fmt.Errorf("--label %q: want KEY=VALUE", l)
					}
					c.Node.Labels[k] = v
				}
			}
			return nil
		},
	})
}
