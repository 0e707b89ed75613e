package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/partition"
)

func init() { register(45, newPartitionCmd) }

func newPartitionCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "partition",
		Short: "See this node's partitions and run instances in them directly",
		Long: `A partition is a slot of this node where one instance lives: its own
directory, port range, Unix user (when the node runs as root), cgroup limits
and metering. The market fills partitions with the instances the node wins;
'weft partition run' fills one directly, without the market (like slapproxy).`,
	}
	cmd.AddCommand(newPartitionListCmd(g), newPartitionRunCmd(g), newPartitionShowCmd(g),
		newPartitionStateCmd(g, "start", partition.StateStarted), newPartitionStateCmd(g, "stop", partition.StateStopped),
		newPartitionStateCmd(g, "destroy", partition.StateDestroyed), newPartitionLogsCmd(g))
	return cmd
}

func newPartitionListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List partitions: user, ports, instance, phase, promises, usage",
		Long: `List this node's partitions. With --json, the array of GET /v1/partitions:
index, user, dir, ports [lo, hi], instance_id, state, phase, promises
[{name, ok, last_error, checked_at}], usage {cpu_ms, mem_avg_bytes,
mem_peak_bytes, disk_bytes, net_bytes} over the last minute (-1: not
measured), limits_enforced, and sandbox (what confines the current run's
processes: the keys of weft status's sandbox object; absent when nothing
runs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Partitions(cmd.Context())
			if err != nil {
				return err
			}
			ps := a.Value
			if g.JSON {
				return g.PrintJSON(ps)
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tUSER\tPORTS\tINSTANCE\tSTATE\tPHASE\tPROMISES\tCPU_MS/MIN\tMEM_AVG\tSANDBOX")
			for _, p := range ps {
				user := p.User
				if user == "" {
					user = "-"
				}
				sandbox := "-"
				if p.Sandbox != nil {
					sandbox = p.Sandbox.Short()
				}
				fmt.Fprintf(tw, "%d\t%s\t%d-%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Index, user, p.Ports[0], p.Ports[1],
					dash(p.InstanceID), p.State, dash(p.Phase), promiseSummary(p.Promises), p.Usage.CPUMs, memString(p.Usage.MemAvgBytes), sandbox)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(ps) > 0 {
				if a, err := c.Status(cmd.Context()); err == nil && a.Value.Partitions != nil {
					fmt.Fprintln(g.Out(), a.Value.Partitions.Limits.Summary)
				}
			}
			return nil
		},
	}
}

func newPartitionRunCmd(g *Globals) *cobra.Command {
	var recipeFile, recipeCID, typ, name, id string
	var params []string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "run --recipe FILE | --cid CID [--param k=v]... [--wait]",
		Short: "Run an instance of a recipe in a partition of this node (no market)",
		Long: `Run an instance of a recipe in one of this node's own partitions, through
POST /v1/local/instances (the same code the market uses for what the node
wins). The recipe is a local TOML file (--recipe) or a published recipe
(--cid). Parameters are checked against the recipe's schema. Running it again
with the same --name (or --id) updates the instance in place.

With --wait it waits until the instance is running with its promises passing
(or completed, for a batch job) and prints its final status; it exits
non-zero if the instance fails.

  weft partition run --recipe recipes/examples/webserver.toml --param message=hi --wait
  weft partition run --recipe recipes/examples/primes.toml --param n=100000 --wait --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.LocalRun{ID: id, Name: name, Type: typ}
			switch {
			case recipeFile != "" && recipeCID != "":
				return fmt.Errorf("give --recipe or --cid, not both")
			case recipeFile != "":
				b, err := os.ReadFile(recipeFile)
				if err != nil {
					return err
				}
				req.TOML = string(b)
			case recipeCID != "":
				req.RecipeCID = recipeCID
			default:
				return fmt.Errorf("give the recipe: --recipe FILE or --cid CID")
			}
			ps := map[string]any{}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--param %q: write key=value", kv)
				}
				ps[k] = v
			}
			req.Params = ps
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.RunLocal(cmd.Context(), req)
			if err != nil {
				return err
			}
			st := a.Value
			if wait {
				if st, err = waitInstance(cmd, g, c, st.ID, timeout); err != nil {
					return err
				}
			}
			return printInstance(g, st)
		},
	}
	f := cmd.Flags()
	f.StringVar(&recipeFile, "recipe", "", "recipe TOML file")
	f.StringVar(&recipeCID, "cid", "", "CID of a published recipe")
	f.StringVar(&typ, "type", "", "software type (default: the recipe's default type)")
	f.StringVar(&name, "name", "", "instance name (the ID is local-NAME)")
	f.StringVar(&id, "id", "", "instance ID (overrides --name's)")
	f.StringArrayVarP(&params, "param", "p", nil, "parameter key=value (repeatable)")
	f.BoolVar(&wait, "wait", false, "wait until running with promises passing, or completed")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	_ = cmd.MarkFlagFilename("recipe", "toml")
	return cmd
}

// waitInstance polls until the instance is running (promises passed),
// completed, failed or gone.
func waitInstance(cmd *cobra.Command, g *Globals, c *api.Client, id string, timeout time.Duration) (partition.InstanceStatus, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	last := partition.Phase("")
	prog := g.startProgress(id + ": waiting")
	defer prog.Stop()
	for {
		a, err := c.LocalInstance(cmd.Context(), id)
		st := a.Value
		if err != nil {
			return st, err
		}
		// Without a terminal, plain lines only once the wait lasts more
		// than a second (docs/cli.md, "Progress").
		if st.Phase != last && !g.JSON && (prog != nil || time.Since(start) > time.Second) {
			if prog != nil {
				prog.Describe(fmt.Sprintf("%s: %s", id, st.Phase))
			} else {
				fmt.Fprintf(g.Err(), "%s: %s\n", id, st.Phase)
			}
			last = st.Phase
		}
		switch st.Phase {
		case partition.PhaseRunning, partition.PhaseCompleted:
			if st.Phase == partition.PhaseRunning && (st.Batch || st.State == partition.StateStopped || st.Stale) {
				break // a batch job is done when completed; a stop, once stopped; an update, once the new run runs
			}
			if st.Phase == partition.PhaseCompleted && st.Batch && st.ResultCID == "" && st.Error == "" && time.Now().Before(deadline) {
				break // the result is being stored
			}
			return st, nil
		case partition.PhaseFailed:
			prog.Stop()
			_ = printInstance(g, st)
			return st, withExitCode(1, fmt.Errorf("instance %s failed: %s", id, st.Error))
		case partition.PhaseStopped:
			if st.State == partition.StateStopped {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			return st, withExitCode(1, fmt.Errorf("instance %s still %s after %s", id, st.Phase, timeout))
		}
		select {
		case <-cmd.Context().Done():
			return st, interrupted(cmd.Context(), "partition show "+id)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func newPartitionShowCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a local instance: phase, processes, promises, connection",
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: completeLocalInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			if args[0] == "" {
				return fmt.Errorf("empty instance ID")
			}
			a, err := c.LocalInstance(cmd.Context(), args[0])
			if err != nil {
				return notFound(err, "local instance", "weft partition list")
			}
			return printInstance(g, a.Value)
		},
	}
}

func newPartitionStateCmd(g *Globals, verb string, state partition.State) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a local instance (requested state " + string(state) + ")",
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: completeLocalInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.RunLocal(cmd.Context(), api.LocalRun{ID: args[0], State: string(state)})
			if err != nil {
				return notFound(err, "local instance", "weft partition list")
			}
			st := a.Value
			if wait && state != partition.StateDestroyed {
				if st, err = waitInstance(cmd, g, c, args[0], 5*time.Minute); err != nil {
					return err
				}
			}
			return printInstance(g, st)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the instance reached the state")
	return cmd
}

// logJSON is one process's log in 'weft partition logs --json'.
type logJSON struct {
	Name   string `json:"name"`
	Output string `json:"output"`
}

// maxLogJSON bounds the bytes of one log 'partition logs --json' includes
// (the end of the log is kept).
const maxLogJSON = 1 << 20

func newPartitionLogsCmd(g *Globals) *cobra.Command {
	var f logFlags
	cmd := &cobra.Command{
		Use:   "logs ID [--process NAME] [--follow] [--since DURATION] [--tail N]",
		Short: "Print a local instance's process logs (stdout and stderr), running or stopped",
		Long: `Print the logs (stdout and stderr) of an instance in this node's
partitions. ` + logsLong + `

With --json it prints an object {id, processes: [{name, output}]}, output
being the last MiB of the log (or its --tail lines).`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeLocalInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return partitionLogs(cmd, g, args[0], &f)
		},
	}
	f.add(cmd)
	return cmd
}

func printInstance(g *Globals, st partition.InstanceStatus) error {
	if g.JSON {
		return g.PrintJSON(st)
	}
	tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "instance\t%s\n", st.ID)
	fmt.Fprintf(tw, "state\t%s (phase %s)\n", st.State, st.Phase)
	fmt.Fprintf(tw, "partition\t%d\n", st.Partition)
	fmt.Fprintf(tw, "recipe\t%s (type %s)\n", st.RecipeCID, st.Type)
	for k, v := range st.Connection {
		fmt.Fprintf(tw, "connection %s\t%s\n", k, v)
	}
	for _, p := range st.Processes {
		fmt.Fprintf(tw, "process %s\tpid %d running=%v restarts=%d %s\n", p.Name, p.PID, p.Running, p.Restarts, p.LastExit)
	}
	for _, p := range st.Promises {
		res := "ok"
		if !p.OK {
			res = "FAIL " + p.LastError
			if p.CheckedAt.IsZero() {
				res = "not checked yet"
			}
		}
		fmt.Fprintf(tw, "promise %s\t%s\n", p.Name, res)
	}
	if st.ResultDir != "" {
		fmt.Fprintf(tw, "result\t%s %s\n", st.ResultCID, st.ResultDir)
	}
	if st.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", st.Error)
	}
	return tw.Flush()
}

func promiseSummary(ps []partition.PromiseStatus) string {
	if len(ps) == 0 {
		return "-"
	}
	ok := 0
	for _, p := range ps {
		if p.OK {
			ok++
		}
	}
	return fmt.Sprintf("%d/%d ok", ok, len(ps))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func memString(n int64) string {
	if n < 0 {
		return "-"
	}
	return humanBytes(n)
}
