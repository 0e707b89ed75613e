package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/demo"
)

func init() { register(90, newDemoCmd) }

func newDemoCmd(g *Globals) *cobra.Command {
	cfg := demo.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local grid end to end and verify every step",
		Long: `Start a local grid of N weft nodes (separate processes on loopback, each with
its own data dir under one temporary folder) and walk through the whole flow:
the grid forms; the example recipes are published; a web server is auctioned,
placed and its page fetched; the primes batch job runs and its result is
checked; the web server's host is killed and the instance is placed again and
serves again; receipts accrue slice by slice; the ledger is audited on every
node (same root everywhere); a statement is printed for the requester.

Every step verifies its result; the demo stops at the first step it cannot
verify and exits 0 only when every step was verified. Progress goes to stderr;
with --json, stdout gets one JSON line per step and, last, a summary object
(ok, nodes, placement_ms, replacement_ms, receipts, root, ...).

Every process and folder it made is removed at the end, also on Ctrl-C.
With --keep the grid stays up after the steps until Ctrl-C, and the demo
prints how to reach it (status commands, the dashboard).

The example recipes are read from --recipes DIR, else from recipes/examples
(found from the working directory upwards, or next to the binary's folder),
else from the copies embedded in the binary, so an installed weft runs the
demo from any directory.`,
		Example: `  make demo                          # builds bin/weft, then: weft demo
  weft demo --nodes 3 --slice 1s --json
  weft demo --keep                   # explore the grid afterwards; Ctrl-C stops it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.JSON = g.JSON
			_, err := demo.Run(cmd.Context(), cfg, g.Out(), g.Err())
			switch {
			case err == nil:
				return nil
			case errors.Is(err, demo.ErrInterrupted):
				return withExitCode(130, nil)
			case errors.Is(err, demo.ErrFailed):
				// The summary already said what failed.
				return withExitCode(1, nil)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of node processes in the local grid (at least 3)")
	f.DurationVar(&cfg.Slice, "slice", cfg.Slice, "ledger slice length for the grid (receipts are cut once per slice)")
	f.BoolVar(&cfg.Keep, "keep", false, "leave the grid running after the steps, until Ctrl-C")
	f.StringVar(&cfg.RecipesDir, "recipes", "", "folder holding webserver.toml and primes.toml (default: recipes/examples found from the working directory, else the copies built into weft)")
	f.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions per node")
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "deadline for all steps (not counting --keep)")
	return cmd
}
