package nodecmd

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/cli"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/daemon"
)

// nodeFlagHook adds flags of one config section to 'weft node'. Each section
// registers its hook from an init function in its own file; apply runs after
// the config file is loaded and copies only the flags the user set.
type nodeFlagHook struct {
	add   func(fs *pflag.FlagSet)
	apply func(fs *pflag.FlagSet, c *config.Config) error
}

var nodeFlagHooks []nodeFlagHook

func registerNodeFlags(h nodeFlagHook) { nodeFlagHooks = append(nodeFlagHooks, h) }

// Order is the node command's place in weft's help listing (cli.Register).
const Order = 10

// New builds 'weft node': it loads the config (file, then flags), and runs
// the daemon in the foreground until the command's context ends.
func New(g *cli.Globals) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a weft node in the foreground until SIGINT/SIGTERM",
		Long: `Run a weft node: join the grid, keep membership, bid on requests, run
instances in local partitions and replicate the ledger. Every flag can also be
set in a TOML file given with --config (see docs/config.md); flags win.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("data-dir") || cfg.Node.DataDir == "" {
				cfg.Node.DataDir = g.DataDir
			}
			for _, h := range nodeFlagHooks {
				if err := h.apply(cmd.Flags(), &cfg); err != nil {
					return err
				}
			}
			log := newLogger(cfg)
			d, err := daemon.New(cfg, log)
			if err != nil {
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "TOML config file (see docs/config.md)")
	for _, h := range nodeFlagHooks {
		h.add(cmd.Flags())
	}
	return cmd
}

// newLogger returns the node's structured logger on stderr, with the level
// and format of [node] log_level and log_format. The daemon adds the peer ID.
func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Node.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Node.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
