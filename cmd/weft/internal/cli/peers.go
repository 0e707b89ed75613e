package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(21, newPeersCmd) }

func newPeersCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List grid members: state (alive, suspect, dead, unreachable), capacity, RTT",
		Long: `List every grid member the node knows, itself included: alive and suspect
members and the dead ones it remembers. With --json it prints an array of
{peer_id, state, addrs, advert{cpu_millis, memory_bytes, disk_bytes,
free_partitions, labels, version, no_bids}, rtt_ms, reach}: version is the
weft build the member runs, no_bids is true for a member that does not bid
(a requester-only node, or one draining): rtt_ms is 0 until a round trip
was measured (shown "-"), reach is how the node reaches the member now:
direct, relayed (through a circuit relay) or none (no connection now).
State unreachable: the membership keeps the member alive (others reach
it) but this node's stream probes to it fail; the market takes it for no
candidate, and its reach is none.
FREE shows "-" for a member that does not bid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Peers(cmd.Context())
			if err != nil {
				return err
			}
			rows := a.Value
			if g.JSON {
				return g.PrintJSON(rows)
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tSTATE\tREACH\tVERSION\tCPU\tMEMORY\tDISK\tFREE\tRTT\tLABELS")
			for _, r := range rows {
				id := r.PeerID
				if r.Self {
					id += " (self)"
				}
				var labels []string
				for k, v := range r.Advert.Labels {
					labels = append(labels, k+"="+v)
				}
				rtt := "-"
				if r.RTTms > 0 {
					rtt = fmt.Sprintf("%.1fms", r.RTTms)
				}
				free := fmt.Sprint(r.Advert.FreePartitions)
				if r.Advert.NoBids {
					free = "-"
				}
				ver := r.Advert.Version
				if ver == "" {
					ver = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\n", id, r.State, r.Reach, ver,
					float64(r.Advert.CPUMillis)/1000, humanBytes(r.Advert.MemoryBytes), humanBytes(r.Advert.DiskBytes),
					free, rtt, strings.Join(labels, ","))
			}
			return tw.Flush()
		},
	}
}

// humanBytes formats n bytes with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
