package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/examples"
)

func init() { registerRecipeSub(newRecipeExamplesCmd) }

// exampleRow is one example of 'weft recipe examples --json'.
type exampleRow struct {
	File        string `json:"file"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	CID         string `json:"cid"`
	Description string `json:"description,omitempty"`
	// Written is the path the file was written to (with --out).
	Written string `json:"written,omitempty"`
}

func newRecipeExamplesCmd(g *Globals) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "examples [--out DIR]",
		Short: "List the example recipes built into weft, or write them into DIR",
		Long: `List the example recipes built into this binary (the files of the source
tree's recipes/examples): file, name, version, CID. With --out DIR, write
them into DIR (created if missing; existing files are kept unless --force),
to read, change, publish or request from any machine where weft is installed.

  weft recipe examples --out ./examples
  weft request web --recipe ./examples/webserver.toml --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := fs.Glob(examples.FS, "*.toml")
			if err != nil {
				return err
			}
			if out != "" {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
			}
			rows := []exampleRow{}
			for _, n := range names {
				b, err := fs.ReadFile(examples.FS, n)
				if err != nil {
					return err
				}
				r, err := recipes.Parse(n, b)
				if err != nil {
					return fmt.Errorf("built-in example %s: %w", n, err)
				}
				d := r.Doc()
				m, err := docMap(d)
				if err != nil {
					return err
				}
				row := exampleRow{File: n, CID: d.CID}
				row.Name, _ = m["name"].(string)
				row.Version, _ = m["version"].(string)
				row.Description, _ = m["description"].(string)
				if out != "" {
					dst := filepath.Join(out, n)
					flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
					if force {
						flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
					}
					f, err := os.OpenFile(dst, flags, 0o644)
					if err != nil {
						if os.IsExist(err) {
							return fmt.Errorf("%s exists (keep it, or overwrite it with --force)", dst)
						}
						return err
					}
					_, err = f.Write(b)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						return err
					}
					row.Written = dst
				}
				rows = append(rows, row)
			}
			if g.JSON {
				return g.PrintJSON(rows)
			}
			for _, r := range rows {
				line := fmt.Sprintf("%-16s %s %s  %s", r.File, r.Name, r.Version, r.CID)
				if r.Written != "" {
					line += "  → " + r.Written
				}
				fmt.Fprintln(g.Out(), line)
				if r.Description != "" && r.Written == "" {
					fmt.Fprintf(g.Out(), "                 %s\n", strings.TrimSpace(r.Description))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the examples into this folder")
	cmd.Flags().BoolVar(&force, "force", false, "with --out, overwrite existing files")
	return cmd
}
