package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/version"
)

func init() { register(96, newVersionCmd) }

func newVersionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the weft version (module version and VCS revision)",
		Long: `Print what this weft binary was built from, read from the Go build
information: the module version, the VCS revision and its time, whether the
tree was modified, and the Go toolchain. 'weft --version' prints the short
form, which is also what 'weft status' shows and what nodes advertise to the
other members ('weft peers'). With --json: {version, revision, time,
modified, go}. It needs no running node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := version.Get()
			if g.JSON {
				return g.PrintJSON(in)
			}
			fmt.Fprintf(g.Out(), "weft %s\n", in)
			if in.Revision != "" {
				fmt.Fprintf(g.Out(), "revision %s", in.Revision)
				if in.Time != "" {
					fmt.Fprintf(g.Out(), " (%s)", in.Time)
				}
				if in.Modified {
					fmt.Fprint(g.Out(), " modified")
				}
				fmt.Fprintln(g.Out())
			}
			fmt.Fprintf(g.Out(), "built with %s\n", in.Go)
			return nil
		},
	}
}
