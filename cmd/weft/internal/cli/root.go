package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/version"
)

// Globals are the flags shared by every command.
type Globals struct {
	// DataDir is the node's data directory (--data-dir, WEFT_DATA_DIR, ~/.weft).
	DataDir string
	// JSON selects machine-readable output (--json).
	JSON bool

	out io.Writer
	err io.Writer
}

// Out is where a command writes its result.
func (g *Globals) Out() io.Writer { return g.out }

// Err is where a command writes progress and diagnostics.
func (g *Globals) Err() io.Writer { return g.err }

// Client returns an API client for the node whose data dir is g.DataDir.
// Its errors say how to start that node.
func (g *Globals) Client() (*api.Client, error) {
	return api.NewClientFromDataDir(g.DataDir)
}

// PrintJSON writes v as indented JSON followed by a newline.
func (g *Globals) PrintJSON(v any) error {
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type commandFactory struct {
	order int
	make  func(*Globals) *cobra.Command
}

var factories []commandFactory

// register adds a top-level command. order sorts the help listing.
func register(order int, f func(*Globals) *cobra.Command) {
	factories = append(factories, commandFactory{order, f})
}

// Register adds a top-level command defined outside this package (the
// node's, which links the daemon): call it before Main or NewRoot. order
// sorts the help listing.
func Register(order int, f func(*Globals) *cobra.Command) { register(order, f) }

// DefaultDataDir is $WEFT_DATA_DIR, or ~/.weft.
func DefaultDataDir() string {
	if d := os.Getenv("WEFT_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".weft"
	}
	return filepath.Join(home, ".weft")
}

// NewRoot builds the root command writing to out and errOut.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	g := &Globals{out: out, err: errOut}
	root := &cobra.Command{
		Use:   "weft",
		Short: "weft — a peer-to-peer cloud fabric",
		Long: `weft deploys any Unix application onto a pool of machines with no central
master. Every machine runs this binary: 'weft node' joins a grid, bids on the
instance requests any peer publishes, runs the instances it wins in local
partitions, and bills them slice by slice into a replicated, auditable ledger.

Start a node, then talk to it with the client commands:

  weft node --data-dir ~/.weft                # join the public grid (or --grid FILE)
  weft status                                 # who am I, who is alive
  weft recipe publish recipes/examples/webserver.toml
  weft request web --recipe recipes/examples/webserver.toml --wait
  weft ledger audit

Client commands find the node through --data-dir (default ~/.weft or
$WEFT_DATA_DIR) and accept --json for machine-readable output. Shell
completion: weft completion --help. Exit codes: 0 done, 1 failed, 2 wrong
command line, 130 interrupted. A tour of every command: docs/cli.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetVersionTemplate("weft {{.Version}}\n")
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVar(&g.DataDir, "data-dir", DefaultDataDir(), "node data directory (env WEFT_DATA_DIR)")
	root.PersistentFlags().BoolVar(&g.JSON, "json", false, "print machine-readable JSON")
	_ = root.MarkPersistentFlagDirname("data-dir")
	fs := append([]commandFactory(nil), factories...)
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].order < fs[j].order })
	for _, f := range fs {
		root.AddCommand(f.make(g))
	}
	addNodeCommands(root, g)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError(cmd, err) })
	// Add cobra's 'completion' now rather than at Execute, so that wrapArgs
	// covers it too: 'weft completion tcsh' is a usage error (exit 2).
	root.InitDefaultCompletionCmd()
	wrapArgs(root)
	return root
}

// Exit codes of Main.
const (
	// ExitOK: the command did what it was asked and verified it.
	ExitOK = 0
	// ExitFailed: the command failed (the message says why and what next).
	ExitFailed = 1
	// ExitUsage: the command line is wrong (unknown command or flag, wrong
	// number of arguments).
	ExitUsage = 2
	// ExitInterrupted: stopped by Ctrl-C (SIGINT) or SIGTERM.
	ExitInterrupted = 130
)

// usageError marks err as a command-line mistake (exit ExitUsage) and says
// where the usage is.
func usageError(cmd *cobra.Command, err error) error {
	return withExitCode(ExitUsage, fmt.Errorf("%w\n(usage: %s; see: %s --help)", err, cmd.UseLine(), cmd.CommandPath()))
}

// wrapArgs makes every command's argument check a usage error, and a
// group (weft instance, weft job, ...) given an unknown subcommand one too
// (cobra would print the help and exit 0).
func wrapArgs(cmd *cobra.Command) {
	if cmd.HasParent() && !cmd.Runnable() && cmd.HasSubCommands() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return withExitCode(ExitUsage, fmt.Errorf("unknown command %q for %q\n(its commands: %s --help)", args[0], c.CommandPath(), c.CommandPath()))
		}
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError(c, err)
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		wrapArgs(sub)
	}
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExitCode wraps err so that Main exits with code.
func withExitCode(code int, err error) error { return &exitError{code, err} }

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

// run runs the CLI with args until ctx ends (a signal) and returns the exit
// code; errors go to errOut prefixed with "weft:".
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := NewRoot(out, errOut)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if ctx.Err() != nil {
			// Interrupted: whatever failed, failed because of the signal.
			var ee *exitError
			if !errors.As(err, &ee) || ee.err != nil {
				fmt.Fprintln(errOut, "weft:", err)
			}
			return ExitInterrupted
		}
		var ee *exitError
		if !errors.As(err, &ee) && strings.HasPrefix(err.Error(), "unknown command") {
			err = withExitCode(ExitUsage, fmt.Errorf("%w\n(see: weft --help)", err))
		}
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(errOut, "weft:", ee.err)
			}
			return ee.code
		}
		fmt.Fprintln(errOut, "weft:", err)
		return ExitFailed
	}
	return ExitOK
}
