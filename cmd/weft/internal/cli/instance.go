package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/scheduler"
)

func init() { register(41, newInstanceCmd) }

func newInstanceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "instance",
		Short: "List and show the instances this node requested",
		Long: `List and show the instances this node requested (and those it guards for
requesters that are offline). With --json: list prints an array, show an
object; each has name, instance_id, node (the host's peer ID), state,
requested_state, connection, epoch, reason, ...; show adds events, the last
few entries of the instance's timeline (weft instance events NAME).`,
	}
	var all bool
	list := &cobra.Command{
		Use:   "list [--all]",
		Short: "List the instances (destroyed ones only with --all)",
		Long: `List the instances this node requested and those it guards. Destroyed
instances are listed only with --all (forget them with weft instance purge
NAME, finished jobs with weft job purge).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Instances(cmd.Context())
			if err != nil {
				return err
			}
			if !all {
				var raws []json.RawMessage
				if err := json.Unmarshal(a.Raw, &raws); err != nil || len(raws) != len(a.Value) {
					return fmt.Errorf("instance list: unexpected answer from the node: %v", err)
				}
				keep, keepRaw := a.Value[:0], []json.RawMessage{}
				for i, v := range a.Value {
					if v.State != scheduler.StateDestroyed {
						keep, keepRaw = append(keep, v), append(keepRaw, raws[i])
					}
				}
				a.Value = keep
				if a.Raw, err = json.Marshal(keepRaw); err != nil {
					return err
				}
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			if len(a.Value) == 0 {
				fmt.Fprintln(g.Out(), "no instances (request one with: weft request NAME --recipe FILE)")
				return nil
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tNODE\tEPOCH\tCONNECTION")
			for _, v := range a.Value {
				conn := ""
				if u, ok := v.Connection["url"]; ok {
					conn = u
				} else if len(v.Connection) > 0 {
					conn = fmt.Sprint(v.Connection)
				}
				name := v.Name
				if !v.Mine {
					name += " (guarded)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", name, v.State, shortID(v.Node), v.Epoch, conn)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one instance: state, host, connection parameters",
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Instance(cmd.Context(), args[0])
			if err != nil {
				return notFound(err, "instance", "weft instance list")
			}
			// The last few events of its timeline (none from a node
			// that keeps no timeline).
			ev, eerr := c.Events(cmd.Context(), args[0])
			if eerr != nil {
				ev.Value = nil
			}
			if len(ev.Value) > showEvents {
				ev.Value = ev.Value[len(ev.Value)-showEvents:]
			}
			if g.JSON {
				var obj map[string]json.RawMessage
				if eerr != nil || json.Unmarshal(a.Raw, &obj) != nil {
					return g.PrintJSON(a.Raw)
				}
				if obj["events"], err = json.Marshal(ev.Value); err != nil {
					return err
				}
				return g.PrintJSON(obj)
			}
			printMarketInstance(g.Out(), a.Value)
			printLastEvents(g.Out(), ev.Value)
			return nil
		},
	}
	list.Flags().BoolVar(&all, "all", false, "also list destroyed instances")
	cmd.AddCommand(list, show, newInstanceConnectCmd(g), newInstancePurgeCmd(g), newInstanceEventsCmd(g), newInstanceWhyCmd(g), newInstanceLogsCmd(g, "instance"))
	return cmd
}

// shortID shortens a peer ID for tables.
func shortID(id string) string {
	if id == "" {
		return "-"
	}
	if len(id) > 16 {
		return id[:6] + "…" + id[len(id)-6:]
	}
	return id
}
