package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newJobListCmd is weft job list.
func newJobListCmd(g *Globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list [--all]",
		Short: "List the batch jobs this node ran: state, node, result, started, ended",
		Long: `List the batch jobs this node requested (weft job run, and batch types
asked with weft request). A job destroyed without a result is listed only
with --all. With --json it prints an array of objects: name (as weft
instance list shows it, job-… when none was given), state (pending,
waiting, running, done, failed, destroyed), result (the result's CID, or
null), node (the host, or null), started and ended (times, or null),
reason, recipe_cid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Jobs(cmd.Context(), all)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			if len(a.Value) == 0 {
				fmt.Fprintln(g.Out(), "no jobs (run one with: weft job run --recipe FILE)")
				return nil
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tNODE\tSTARTED\tENDED\tRESULT")
			at := func(t *time.Time) string {
				if t == nil {
					return "-"
				}
				return t.Local().Format("2006-01-02 15:04:05")
			}
			for _, j := range a.Value {
				node, result := "-", "-"
				if j.Node != nil {
					node = shortID(*j.Node)
				}
				if j.Result != nil {
					result = *j.Result
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.State, node, at(j.Started), at(j.Ended), result)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list jobs destroyed without a result")
	return cmd
}

// newJobPurgeCmd is weft job purge.
func newJobPurgeCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "purge [NAME]",
		Short: "Forget finished jobs (done or destroyed), or the one named",
		Long: `Forget the jobs that are done or destroyed — or only the job NAME — on
this node: they leave weft job list and weft instance list. Their results
stay fetchable by CID (weft job result CID). A job still pending or running
is not purged (naming one is an error). With --json it prints the array of
names purged.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeJobs(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			a, err := c.PurgeJobs(cmd.Context(), name)
			if err != nil {
				return fmt.Errorf("job purge: %w", err)
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			fmt.Fprintf(g.Out(), "purged %d job(s)\n", len(a.Value))
			for _, n := range a.Value {
				fmt.Fprintln(g.Out(), " ", n)
			}
			return nil
		},
	}
}

// newInstancePurgeCmd is weft instance purge.
func newInstancePurgeCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "purge NAME",
		Short: "Forget a destroyed instance (it leaves weft instance list --all)",
		Long: `Forget the record of a destroyed instance on this node. An instance that
is not destroyed is refused: destroy it first with
'weft request NAME --state destroyed --wait'. With --json it prints the
array of names purged.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.PurgeInstance(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("instance purge: %w", notFound(err, "instance", "weft instance list --all"))
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			fmt.Fprintf(g.Out(), "purged %s\n", args[0])
			return nil
		},
	}
}
