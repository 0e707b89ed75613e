package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// showEvents is how many of the last events weft instance show prints.
const showEvents = 5

// newInstanceEventsCmd is weft instance events.
func newInstanceEventsCmd(g *Globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "events NAME [--follow]",
		Short: "Show an instance's timeline: auctions, placements, starts, failures, restarts",
		Long: `Show what happened to an instance, as this node (its requester, or a
guardian) saw it from the hosts' signed statuses and its own auctions:
requested, auctioned (bids and declines), awarded (node, epoch, price),
installing, started, promise_failing / promise_recovered, restarted (exit
status), host_lost, replaced (why), fenced, stopped, destroyed, done,
waiting, failed (reason). The node keeps the last 200 entries per instance
across restarts.

--follow prints the timeline, then each new entry as it happens, until
interrupted. With --json it prints a JSON array of objects {time, kind,
node (null where no node applies), detail}; with --follow, one object per
line.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			if follow {
				enc := json.NewEncoder(g.Out())
				err := c.FollowEvents(cmd.Context(), args[0], func(e api.Event) error {
					if g.JSON {
						return enc.Encode(e)
					}
					printEvent(g.Out(), e)
					return nil
				})
				return notFound(err, "instance", "weft instance list --all")
			}
			a, err := c.Events(cmd.Context(), args[0])
			if err != nil {
				return notFound(err, "instance", "weft instance list --all")
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			if len(a.Value) == 0 {
				fmt.Fprintf(g.Out(), "no events of %s yet\n", args[0])
				return nil
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			for _, e := range a.Value {
				printEvent(tw, e)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print new events as they happen, until interrupted")
	return cmd
}

func printEvent(w io.Writer, e api.Event) {
	node := "-"
	if e.Node != nil {
		node = shortID(*e.Node)
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Kind, node, e.Detail)
}

// printLastEvents prints the last few events of an instance (weft
// instance show), or nothing when the node has none to give.
func printLastEvents(w io.Writer, events []api.Event) {
	if len(events) == 0 {
		return
	}
	if len(events) > showEvents {
		events = events[len(events)-showEvents:]
	}
	fmt.Fprintln(w, "  last events:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range events {
		fmt.Fprint(tw, "    ")
		printEvent(tw, e)
	}
	_ = tw.Flush()
}

// newInstanceWhyCmd is weft instance why.
func newInstanceWhyCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "why NAME",
		Short: "Show the last auction of an instance: every bid and decline, the ranking, the winner",
		Long: `Show why an instance went where it went (or nowhere): the last auction
this node ran for it — every bidder's bid (price, fit, RTT) in rank order,
every decline with its reason, the winner, and the explanation of an
auction nobody won. Bids rank by total price, then fit, then RTT to the
requester. With --json: {auction, ranked[{rank, node, price, fit, rtt_ms,
winner}], ranking, summary}.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Why(cmd.Context(), args[0])
			if err != nil {
				return notFound(err, "auction", "weft instance events "+args[0])
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			w := a.Value
			au := w.Auction
			fmt.Fprintf(g.Out(), "%s: auction %s (epoch %d, opened for %s), %s\n", args[0], au.Phase, au.Epoch, au.Reason, w.Summary)
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			if len(w.Ranked) > 0 {
				fmt.Fprintln(tw, "RANK\tNODE\tPRICE/H\tFIT\tRTT\t")
				for _, b := range w.Ranked {
					mark := ""
					if b.Winner {
						mark = "← winner"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%dms\t%s\n", b.Rank, b.Node, b.Price, b.Fit, b.RTTms, mark)
				}
			}
			for _, d := range au.Declines {
				fmt.Fprintf(tw, "-\t%s\tdeclined: %s\t\t\t\n", d.Node, d.Reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(g.Out(), "ranking: %s\n", w.Ranking)
			if au.Explanation != "" {
				fmt.Fprintf(g.Out(), "explanation: %s\n", au.Explanation)
			}
			return nil
		},
	}
}
