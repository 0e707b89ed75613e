package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

func init() { register(42, newJobCmd) }

func newJobCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Run batch jobs on the grid and fetch their results",
		Long: `Run a batch recipe on the grid: it is placed like an instance, runs to
completion (re-placed after a failure, up to [market] max_retries), and its
output directory becomes a result addressed by CID that any peer can fetch.`,
	}
	var (
		recipe, typ string
		params, sla []string
		wait        bool
		timeout     time.Duration
	)
	run := &cobra.Command{
		Use:   "run --recipe FILE|CID",
		Short: "Run a batch job",
		Long: `Run a batch job. With --wait it returns when the job is done (or failed,
non-zero, with the reason). With --json it prints an object with id, state
(pending, running, done, failed, waiting), result (the result's CID), node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.Client()
			if err != nil {
				return err
			}
			body := api.Request{Type: typ, SLA: sla}
			if body.Params, err = parseKV("param", params); err != nil {
				return err
			}
			if err := recipeArg(ctx, c, recipe, &body); err != nil {
				return err
			}
			a, err := c.RunJob(ctx, body)
			if err != nil {
				return fmt.Errorf("job run: %w", err)
			}
			if wait {
				w, err := waitJob(ctx, g, c, a.Value.ID, timeout)
				if w.Raw != nil {
					a = w
				}
				if err != nil {
					if g.JSON && w.Raw != nil {
						_ = g.PrintJSON(w.Raw)
					}
					return err
				}
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			printJob(g, a.Value)
			return nil
		},
	}
	f := run.Flags()
	f.StringVar(&recipe, "recipe", "", "batch recipe file (.toml) or CID of a published recipe")
	f.StringVar(&typ, "type", "", "software type (default: the recipe's default type)")
	f.StringArrayVarP(&params, "param", "p", nil, "parameter KEY=VALUE, repeatable (checked against the recipe's schema)")
	f.StringArrayVar(&sla, "sla", nil, "constraint KEY=VALUE, repeatable (see weft request --help)")
	f.BoolVar(&wait, "wait", false, "wait until the job is done (or failed)")
	f.DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	_ = run.MarkFlagFilename("recipe", "toml")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a job's state and result",
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: completeJobs(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Job(cmd.Context(), args[0])
			if err != nil {
				return notFound(err, "job", "weft instance list")
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			printJob(g, a.Value)
			return nil
		},
	}

	var out string
	result := &cobra.Command{
		Use:   "result CID --out DIR",
		Short: "Fetch a job's result (from any peer) and write its files into DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required: where to write the result's files")
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			if ents, err := os.ReadDir(abs); err == nil && len(ents) > 0 {
				return fmt.Errorf("--out %s is not empty: the result is written only into a new or empty directory (pick another --out, or empty this one)", out)
			}
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return err
			}
			c, err := g.Client()
			if err != nil {
				return err
			}
			prog := g.startProgress("fetching result " + shortID(args[0]))
			res, err := c.FetchJobResult(cmd.Context(), api.JobResult{CID: args[0], Out: abs})
			prog.Stop()
			if err != nil {
				return fmt.Errorf("job result %s: %w", args[0], err)
			}
			if g.JSON {
				return g.PrintJSON(res.Raw)
			}
			fmt.Fprintf(g.Out(), "result %s written to %s\n", args[0], abs)
			return nil
		},
	}
	result.Flags().StringVar(&out, "out", "", "directory to write the result's files into (created if missing; must be empty)")
	_ = result.MarkFlagDirname("out")
	cmd.AddCommand(run, show, result, newJobListCmd(g), newJobPurgeCmd(g), newInstanceLogsCmd(g, "job"))
	return cmd
}

func printJob(g *Globals, j api.Job) {
	fmt.Fprintf(g.Out(), "job %s: %s", j.ID, j.State)
	if j.Node != "" {
		fmt.Fprintf(g.Out(), " on %s", j.Node)
	}
	fmt.Fprintln(g.Out())
	if j.Reason != "" {
		fmt.Fprintf(g.Out(), "  reason: %s\n", j.Reason)
	}
	if j.Result != "" {
		fmt.Fprintf(g.Out(), "  result: %s\n  fetch it with: weft job result %s --out DIR\n", j.Result, j.Result)
	}
}

// waitJob polls a job until it is done (nil error) or failed.
func waitJob(parent context.Context, g *Globals, c *api.Client, id string, timeout time.Duration) (api.Answer[api.Job], error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	start := time.Now()
	last := ""
	prog := g.startProgress("job " + id + ": waiting")
	defer prog.Stop()
	var none api.Answer[api.Job]
	for {
		a, err := c.Job(ctx, id)
		if err != nil && a.Raw == nil {
			if parent.Err() != nil {
				return none, interrupted(parent, "job show "+id)
			}
			if ctx.Err() != nil {
				return none, fmt.Errorf("job %s: gave up waiting after %s (check it with: weft job show %s)", id, timeout, id)
			}
			return none, err
		}
		j, raw := a.Value, a
		switch {
		case j.State == "done" && j.Result != "":
			prog.Stop()
			if time.Since(start) > time.Second {
				fmt.Fprintf(g.Err(), "job %s: done after %s\n", id, time.Since(start).Round(100*time.Millisecond))
			}
			return raw, nil
		case j.State == "failed":
			return raw, fmt.Errorf("job %s failed: %s", id, j.Reason)
		}
		if now := j.State + " " + j.Reason; now != last && time.Since(start) > time.Second {
			last = now
			msg := j.State
			if j.Reason != "" {
				msg += " (" + j.Reason + ")"
			}
			if prog != nil {
				prog.Describe("job " + id + ": " + msg)
			} else {
				fmt.Fprintf(g.Err(), "job %s: %s, %s so far...\n", id, msg, time.Since(start).Round(time.Second))
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return raw, interrupted(parent, "job show "+id)
			}
			return raw, fmt.Errorf("job %s: still %s after %s (check it with: weft job show %s)", id, j.State, timeout, id)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
