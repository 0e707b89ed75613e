package cli

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// addNodeCommands adds drain and undrain under weft node (which the node's
// own package registers; without it, a group of their own).
func addNodeCommands(root *cobra.Command, g *Globals) {
	for _, c := range root.Commands() {
		if c.Name() == "node" {
			c.AddCommand(newNodeDrainCmd(g, true), newNodeDrainCmd(g, false))
			return
		}
	}
	node := &cobra.Command{Use: "node", Short: "Drain or undrain the running node"}
	node.AddCommand(newNodeDrainCmd(g, true), newNodeDrainCmd(g, false))
	root.AddCommand(node)
}

func newNodeDrainCmd(g *Globals, drain bool) *cobra.Command {
	var wait bool
	var timeout time.Duration
	use, short, long := "drain [--wait]", "Stop bidding and have this node's instances re-placed elsewhere",
		`Take the running node out of the market: it stops bidding, advertises
no_bids (auctioneers leave it out), and tells the requesters of the
instances it hosts (or their guardians, when a requester is offline) that
it is draining: they re-place them on other nodes, and the new contracts
stop the copies here. --wait returns once the node hosts nothing any more.
Undo with weft node undrain. With --json: {draining, hosted}.`
	if !drain {
		use, short, long = "undrain", "Bid again after a drain", `Put a drained node back into the market: it bids again and advertises
its capacity. A requester-only node (--partitions 0) stays out. With
--json: {draining, hosted}.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			verb := "drain"
			if !drain {
				verb = "undrain"
			}
			a, err := c.Drain(cmd.Context(), http.MethodPost, verb)
			if err != nil {
				return fmt.Errorf("node %s: %w", verb, err)
			}
			if drain && wait {
				deadline := time.Now().Add(timeout)
				prog := g.startProgress("draining")
				for len(a.Value.Hosted) > 0 {
					if time.Now().After(deadline) {
						prog.Stop()
						return fmt.Errorf("node drain: still hosting %s after %s (follow: weft node drain again, or weft partition list)", strings.Join(a.Value.Hosted, ", "), timeout)
					}
					select {
					case <-cmd.Context().Done():
						prog.Stop()
						return interrupted(cmd.Context(), "node drain --wait")
					case <-time.After(250 * time.Millisecond):
					}
					if a, err = c.Drain(cmd.Context(), http.MethodGet, "drain"); err != nil {
						prog.Stop()
						return err
					}
					prog.Describe(fmt.Sprintf("draining: %d instance(s) left", len(a.Value.Hosted)))
				}
				prog.Stop()
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			if a.Value.Draining {
				fmt.Fprintf(g.Out(), "draining: bidding stopped; %d instance(s) still hosted here\n", len(a.Value.Hosted))
			} else {
				fmt.Fprintln(g.Out(), "bidding again")
			}
			return nil
		},
	}
	if drain {
		cmd.Flags().BoolVar(&wait, "wait", false, "wait until every instance left this node")
		cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	}
	return cmd
}
