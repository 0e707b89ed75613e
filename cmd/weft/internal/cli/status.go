package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(20, newStatusCmd) }

func newStatusCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this node: peer ID, addresses, grid, members and peers",
		Long: `Show the running node's identity and its view of the grid.

With --json it prints one object: peer_id, addrs (full multiaddrs ending in
/p2p/<peer_id>, each usable as --bootstrap of another node), members (alive
members, self included), peers (connected libp2p peers), grid ("public" or
the private grid's name), preset, version, uptime_s, limits, sandbox (which
protections confine recipes' processes on this node: landlock_abi, fs,
bind_ports, scoped_signals, private_tmp, private_ipc, disk_quota,
disk_metered, rlimits, promises, reasons), and fields other subsystems add.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			s := a.Value
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			for _, kv := range []struct {
				k string
				v any
			}{{"peer_id", s.PeerID}, {"grid", s.Grid}, {"members", s.Members}, {"peers", s.Peers},
				{"preset", s.Preset}, {"version", s.Version}, {"uptime_s", s.UptimeS}} {
				fmt.Fprintf(tw, "%s\t%v\n", kv.k, kv.v)
			}
			for i, addr := range s.Addrs {
				label := ""
				if i == 0 {
					label = "addrs"
				}
				fmt.Fprintf(tw, "%s\t%v\n", label, addr)
			}
			// The subsystems' sections, also those of a newer node this
			// client does not know, in name order.
			var st map[string]any
			if err := json.Unmarshal(a.Raw, &st); err != nil {
				return fmt.Errorf("status: unexpected answer from the node: %w", err)
			}
			var extra []string
			for k := range st {
				switch k {
				case "peer_id", "grid", "members", "peers", "preset", "version", "uptime_s", "addrs", "limits", "sandbox":
				default:
					extra = append(extra, k)
				}
			}
			sort.Strings(extra)
			for _, k := range extra {
				fmt.Fprintf(tw, "%s\t%s\n", k, statusValue(st[k]))
			}
			// What the host enforces on partitions, said plainly.
			if p := s.Partitions; p != nil && p.Limits.Summary != "" {
				fmt.Fprintf(tw, "limits\t%v\n", p.Limits.Summary)
			}
			// What confines recipes' processes, and why not more.
			if _, ok := st["sandbox"]; ok {
				fmt.Fprintf(tw, "sandbox\t%s\n", s.Sandbox.Short())
				for _, r := range s.Sandbox.Reasons {
					fmt.Fprintf(tw, "\t%s\n", r)
				}
			}
			return tw.Flush()
		},
	}
}

// statusValue renders one subsystem's status for people: scalars as they
// are, objects as sorted key=value pairs (a nested object with a summary
// shows only that; the limits line says it in full).
func statusValue(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			if sub, ok := x[k].(map[string]any); ok {
				if _, has := sub["summary"]; has {
					continue
				}
				parts = append(parts, k+"={"+statusValue(sub)+"}")
				continue
			}
			parts = append(parts, k+"="+statusValue(x[k]))
		}
		return strings.Join(parts, " ")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = statusValue(e)
		}
		return strings.Join(parts, ", ")
	case nil:
		return "-"
	default:
		return strings.TrimSpace(fmt.Sprint(x))
	}
}
