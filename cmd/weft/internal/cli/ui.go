package cli

import (
	"fmt"
	"net/url"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
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
		Short: "Print a one-time URL that opens this node's web dashboard, logged in",
		Long: `Print a URL of the node's web dashboard (served on its local API address)
holding a one-time login code: opening it within a minute logs the browser in
(a cookie) and shows the dashboard: grid members, partitions, instances,
auctions and the ledger, updated live. The code works once; run 'weft ui'
again for another. The node's API token never appears in the URL or on a
command line (the CLI reads it from the data dir).

The API listens on loopback; to reach a remote node, tunnel its API port
(e.g. ssh -L 7070:127.0.0.1:7070 HOST) and open the URL locally.`,
		Example: `  weft --data-dir ~/.weft ui
  weft ui --open          # and open it in the default browser (xdg-open)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			var code api.LoginCode
			if err := c.Post(cmd.Context(), "/v1/login-code", nil, &code); err != nil {
				return err
			}
			u := c.Base + "/login?code=" + url.QueryEscape(code.Code)
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
