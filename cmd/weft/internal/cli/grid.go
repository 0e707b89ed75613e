package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"text/tabwriter"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/grid"
)

func init() { register(22, newGridCmd) }

func newGridCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grid",
		Short: "Create and manage a private grid (init, id, show, admit, revoke)",
		Long: `A private grid admits only its members. The founder creates the grid file
with 'weft grid init' (its own data dir's key becomes the founder key and
never leaves it), hands the file to members, and admits each member's peer ID
with 'weft grid admit' on its running node. A node started with --grid FILE
talks only to that grid: peers without the file's key get no connection, and
peers not on the founder-signed member list are refused. 'weft grid revoke'
cuts a member off everywhere without changing the key.

  weft --data-dir ~/.weft grid init --name lab --out lab.grid   # founder
  weft --data-dir ~/.weft node --grid lab.grid &                # founder's node
  weft --data-dir ~/member grid id                              # member: prints its peer ID
  weft --data-dir ~/.weft grid admit 12D3KooW...                # founder
  weft --data-dir ~/member node --grid lab.grid --bootstrap /ip4/.../p2p/<founder>`,
	}
	cmd.AddCommand(newGridInitCmd(g), newGridIDCmd(g), newGridShowCmd(g),
		newGridChangeCmd(g, "admit", "Admit a peer to the grid (founder's node only)"),
		newGridChangeCmd(g, "revoke", "Revoke a member: every member disconnects and refuses it (founder's node only)"))
	return cmd
}

func newGridInitCmd(g *Globals) *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "init --name NAME --out FILE",
		Short: "Create a private grid founded by this data dir's identity and write its grid file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" || out == "" {
				return errors.New("grid init: --name and --out are required")
			}
			key, err := p2p.LoadOrCreateIdentity(g.DataDir)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return err
			}
			f, err := grid.New(name, id)
			if err != nil {
				return err
			}
			if err := f.WriteFile(out); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%w\n(grid init never overwrites a grid file: its key admits every member; write to another --out, or remove %s if that grid is no longer used)", err, out)
				}
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"name": f.Name, "id": f.ID, "founder": f.Founder.String(), "file": out})
			}
			fmt.Fprintf(g.Out(), "grid %q (id %s) written to %s\nfounder: %s (key in %s)\n", f.Name, f.ID, out, id, g.DataDir)
			fmt.Fprintf(g.Err(), "next: weft --data-dir %s node --grid %s\n", g.DataDir, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "grid name (letters, digits, '.', '_', '-')")
	cmd.Flags().StringVar(&out, "out", "", "grid file to write (refuses to overwrite)")
	return cmd
}

func newGridIDCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Print this data dir's peer ID (creating the identity if needed), to be admitted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(g.DataDir, 0o700); err != nil {
				return err
			}
			key, err := p2p.LoadOrCreateIdentity(g.DataDir)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]string{"peer_id": id.String()})
			}
			fmt.Fprintln(g.Out(), id)
			return nil
		},
	}
}

func newGridShowCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the grid and its current signed member list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.Grid(cmd.Context())
			if err != nil {
				return err
			}
			return printGrid(g, a.Value)
		},
	}
}

func newGridChangeCmd(g *Globals, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " PEER_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: completePeers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := peer.Decode(args[0]); err != nil {
				return fmt.Errorf("grid %s: %q is not a peer ID: %w", verb, args[0], err)
			}
			c, err := g.Client()
			if err != nil {
				return err
			}
			a, err := c.ChangeGrid(cmd.Context(), verb, args[0])
			if err != nil {
				return gridChangeHint(err, verb)
			}
			return printGrid(g, a.Value)
		},
	}
}

// gridChangeHint says where admit and revoke work: on the founder's node
// of a private grid.
func gridChangeHint(err error, verb string) error {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		return err
	}
	return fmt.Errorf("%w\n(grid %s runs on the founder's node of a private grid: weft --data-dir FOUNDER_DIR grid %s PEER_ID; "+
		"to found one: weft grid init --name NAME --out FILE, then weft node --grid FILE)", err, verb, verb)
}

func printGrid(g *Globals, gi api.Grid) error {
	if g.JSON {
		return g.PrintJSON(gi)
	}
	tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "grid\t%s\nid\t%s\nfounder (this node)\t%v\nlist version\t%d\n", gi.Grid, gi.ID, gi.Founder, gi.Version)
	for _, m := range gi.Members {
		fmt.Fprintf(tw, "member\t%s\n", m)
	}
	for _, m := range gi.Revoked {
		fmt.Fprintf(tw, "revoked\t%s\n", m)
	}
	return tw.Flush()
}
