package cli

import (
	"fmt"
	"net/url"
	"os/exec"

	"github.com/spf13/cobra"
)

func init() { register(90, newUICmd) }

// uiResult is what 'weft ui --json' prints.
type uiResult struct {
	URL string `json:"url"`
}

func newUICmd(g *Globals) *cobra.Command {
	var open bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Print the URL that opens this node's web dashboard, logged in",
		Long: `Print the URL of the node's web dashboard (served on its local API address).
Opening it sets a cookie holding the node's API token and shows the dashboard:
grid members, partitions, instances, auctions and the ledger, updated live.

The URL contains the token: anyone who can open it can use the node's API.
Keep it to yourself. The API listens on loopback; to reach a remote node, tunnel
its API port (e.g. ssh -L 7070:127.0.0.1:7070 HOST) and open the URL locally.`,
		Example: `  weft --data-dir ~/.weft ui
  weft ui --open          # and open it in the default browser (xdg-open)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			u := c.Base + "/login?token=" + url.QueryEscape(c.Token())
			if g.JSON {
				if err := g.PrintJSON(uiResult{URL: u}); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(g.Out(), u)
			}
			if open {
				return openBrowser(g, u)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "also open the URL in the default browser (xdg-open)")
	return cmd
}

// openBrowser starts xdg-open (or open on macOS) and does not wait for it.
func openBrowser(g *Globals, u string) error {
	for _, name := range []string{"xdg-open", "open"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		c := exec.Command(path, u)
		if err := c.Start(); err != nil {
			return fmt.Errorf("ui: %s: %w", name, err)
		}
		return c.Process.Release()
	}
	fmt.Fprintln(g.Err(), "weft: no xdg-open found; open the URL above in a browser yourself")
	return nil
}
