package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
)

func init() { register(30, newRecipeCmd) }

func newRecipeCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recipe",
		Short: "Check, publish and inspect recipes (the software instances run)",
		Long: `A recipe is a TOML file saying what software an instance needs and how to
run it: software types with their processes, ports, promises (health checks)
and connection parameters, a parameter schema, resources, an install step,
files and artifacts. It is addressed by its CID, computed over a canonical
encoding, so the same recipe has the same CID on every machine.
See docs/recipes.md and recipes/examples/.

  weft recipe lint recipes/examples/webserver.toml
  weft recipe publish recipes/examples/webserver.toml    # store + announce
  weft recipe show bafyrei...                            # from any node of the grid
  weft recipe list
  weft recipe examples --out DIR                         # the examples built into weft`,
	}
	cmd.AddCommand(newRecipeLintCmd(g), newRecipePublishCmd(g), newRecipeShowCmd(g), newRecipeListCmd(g))
	for _, f := range recipeSubs {
		cmd.AddCommand(f(g))
	}
	return cmd
}

// recipeSubs are further 'weft recipe' subcommands, kept in their own files.
var recipeSubs []func(*Globals) *cobra.Command

// registerRecipeSub adds a 'weft recipe' subcommand.
func registerRecipeSub(f func(*Globals) *cobra.Command) { recipeSubs = append(recipeSubs, f) }

// lintResult is the --json output of 'weft recipe lint' for one file.
type lintResult struct {
	File     string        `json:"file"`
	Valid    bool          `json:"valid"`
	CID      string        `json:"cid,omitempty"`
	Problems []lintProblem `json:"problems"`
}

type lintProblem struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func newRecipeLintCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check recipe files; print every problem as FILE:LINE: message",
		Long: `Check recipe files without a node. Every problem is printed on its own line
as FILE:LINE: message, and the exit status is 1 when any file has one.
A valid file prints its name, recipe and CID.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			var results []lintResult
			for _, f := range args {
				res := lintResult{File: f, Problems: []lintProblem{}}
				b, err := os.ReadFile(f)
				if err != nil {
					res.Problems = append(res.Problems, lintProblem{Line: 0, Message: err.Error()})
				} else if r, err := recipes.Parse(f, b); err != nil {
					var le *recipes.LintErrors
					if errors.As(err, &le) {
						for _, p := range le.Problems {
							res.Problems = append(res.Problems, lintProblem{Line: p.Line, Message: p.Msg})
						}
					} else {
						res.Problems = append(res.Problems, lintProblem{Line: 1, Message: err.Error()})
					}
				} else {
					res.Valid, res.CID = true, r.CID().String()
				}
				if !res.Valid {
					bad++
				}
				results = append(results, res)
				if g.JSON {
					continue
				}
				if res.Valid {
					fmt.Fprintf(g.Out(), "%s: ok (cid %s)\n", f, res.CID)
				}
				for _, p := range res.Problems {
					if p.Line == 0 {
						fmt.Fprintf(g.Out(), "%s: %s\n", f, p.Message)
					} else {
						fmt.Fprintf(g.Out(), "%s:%d: %s\n", f, p.Line, p.Message)
					}
				}
			}
			if g.JSON {
				if len(results) == 1 {
					_ = g.PrintJSON(results[0])
				} else {
					_ = g.PrintJSON(results)
				}
			}
			if bad > 0 {
				return withExitCode(1, nil)
			}
			return nil
		},
	}
}

// readRecipeFile parses path, printing lint problems in the usual form.
func readRecipeFile(path string) (*recipes.Recipe, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := recipes.Parse(path, b)
	if err != nil {
		return nil, fmt.Errorf("%w\n(run 'weft recipe lint %s' to check a recipe)", err, path)
	}
	return r, nil
}

// openLocalStore opens the content store of dataDir directly (no node).
func openLocalStore(dataDir string) (*store.Store, error) {
	return store.Open(filepath.Join(dataDir, "content"))
}

func newRecipePublishCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "publish FILE",
		Short: "Store a recipe and its artifacts on this node and announce them to the grid",
		Long: `Validate FILE, store the recipe (in its canonical form) and the files it
gives by source on this node, and announce them in the DHT so that any node
of the grid can fetch them by CID. Prints the recipe with its CID.

Without a running node the recipe is stored in --data-dir and announced
when the node starts.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			r, err := readRecipeFile(path)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(filepath.Dir(path))
			if err != nil {
				return err
			}
			b, _ := os.ReadFile(path)
			var out api.Answer[api.PublishedRecipe]
			published := false
			if c, cerr := api.NewClientFromDataDir(g.DataDir); cerr == nil {
				prog := g.startProgress("publishing " + filepath.Base(path))
				out, err = c.PublishRecipe(cmd.Context(), api.PublishRecipe{TOML: string(b), File: path, BaseDir: abs})
				prog.Stop()
				if err != nil && !isUnreachable(err) {
					return err
				}
				published = err == nil
			}
			if !published { // no node: store locally
				st, err := openLocalStore(g.DataDir)
				if err != nil {
					return err
				}
				if err := r.ResolveSources(abs, func(p string) (cid.Cid, error) { return putFileProgress(g, st, p) }); err != nil {
					return err
				}
				for _, a := range r.ArtifactCIDs() {
					if !st.Has(a) {
						return fmt.Errorf("artifact %s is not in %s and no node is running to fetch it: %s", a, g.DataDir, api.StartHint(g.DataDir))
					}
					_ = st.MarkRoot(a)
				}
				c, err := st.PutRecipe(r)
				if err != nil {
					return err
				}
				_ = st.MarkRoot(c)
				out.Value = api.PublishedRecipe{Document: r.Doc(), ProvideError: "no node is running; it is announced when the node starts"}
				if out.Raw, err = json.Marshal(out.Value); err != nil {
					return err
				}
			}
			if g.JSON {
				return g.PrintJSON(out.Raw)
			}
			fmt.Fprintf(g.Out(), "%v\n", out.Value.CID)
			if !out.Value.Provided {
				fmt.Fprintf(g.Err(), "stored, not announced yet: %v\n", out.Value.ProvideError)
			}
			return nil
		},
	}
}

// putFileProgress stores the file at path in st, with a byte bar on a
// terminal when it takes more than a second.
func putFileProgress(g *Globals, st *store.Store, path string) (cid.Cid, error) {
	f, err := os.Open(path)
	if err != nil {
		return cid.Undef, err
	}
	defer f.Close()
	var size int64 = -1
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	prog := g.startTransfer("storing "+filepath.Base(path), size)
	defer prog.Stop()
	return st.Put(prog.Reader(f))
}

// isUnreachable reports an API error meaning no node answers (a stale api.json).
func isUnreachable(err error) bool {
	var ae *api.Error
	return !errors.As(err, &ae)
}

func docMap(d recipes.Document) (map[string]any, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func newRecipeShowCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show CID|FILE",
		Short: "Show a recipe by CID (fetched from the grid when not local) or a recipe file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			arg := args[0]
			c, cerr := cid.Decode(arg)
			switch {
			case cerr != nil:
				if _, err := os.Stat(arg); err != nil {
					return fmt.Errorf("%q is neither a CID nor a recipe file (the CIDs this node stores: weft recipe list)", arg)
				}
				r, err := readRecipeFile(arg)
				if err != nil {
					return err
				}
				if out, err = docMap(r.Doc()); err != nil {
					return err
				}
			default:
				if client, err := api.NewClientFromDataDir(g.DataDir); err == nil {
					prog := g.startProgress("fetching recipe " + shortID(c.String()))
					err = client.Get(cmd.Context(), "/v1/recipes/"+c.String(), &out)
					prog.Stop()
					if err != nil && !isUnreachable(err) {
						return notFound(err, "recipe", "weft recipe list")
					}
				}
				if out == nil {
					st, err := openLocalStore(g.DataDir)
					if err != nil {
						return err
					}
					r, err := st.Recipe(c)
					if err != nil {
						return fmt.Errorf("%w\n(no node is running in %s to fetch it from the grid: %s)", err, g.DataDir, api.StartHint(g.DataDir))
					}
					if out, err = docMap(recipes.Document{CID: c.String(), Recipe: r}); err != nil {
						return err
					}
				}
			}
			if g.JSON {
				return g.PrintJSON(out)
			}
			printRecipe(g.Out(), out)
			return nil
		},
	}
}

func newRecipeListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the recipes this node stores",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out []map[string]any
			got := false
			if client, err := api.NewClientFromDataDir(g.DataDir); err == nil {
				err = client.Get(cmd.Context(), "/v1/recipes", &out)
				if err != nil && !isUnreachable(err) {
					return err
				}
				got = err == nil
			}
			if !got {
				st, err := openLocalStore(g.DataDir)
				if err != nil {
					return err
				}
				cs, err := st.Recipes()
				if err != nil {
					return err
				}
				out = []map[string]any{}
				for _, c := range cs {
					if r, err := st.Recipe(c); err == nil {
						m, _ := docMap(recipes.Document{CID: c.String(), Recipe: r})
						out = append(out, m)
					}
				}
			}
			if g.JSON {
				return g.PrintJSON(out)
			}
			if len(out) == 0 {
				fmt.Fprintln(g.Out(), "no recipes (publish one with: weft recipe publish FILE)")
			}
			for _, m := range out {
				fmt.Fprintf(g.Out(), "%v  %v %v\n", m["cid"], m["name"], m["version"])
			}
			return nil
		},
	}
}

// printRecipe writes a human summary of a recipe document.
func printRecipe(w io.Writer, m map[string]any) {
	fmt.Fprintf(w, "%v %v\n  cid: %v\n", m["name"], m["version"], m["cid"])
	if d, ok := m["description"].(string); ok && d != "" {
		fmt.Fprintf(w, "  %s\n", d)
	}
	printParams := func(indent string, ps map[string]any) {
		for _, k := range sortedMapKeys(ps) {
			p, _ := ps[k].(map[string]any)
			var extra []string
			if v, ok := p["default"]; ok {
				extra = append(extra, fmt.Sprintf("default %v", v))
			}
			if r, _ := p["required"].(bool); r {
				extra = append(extra, "required")
			}
			if e, ok := p["enum"].([]any); ok {
				extra = append(extra, fmt.Sprintf("one of %v", e))
			}
			line := fmt.Sprintf("%s%s (%v)", indent, k, p["type"])
			if len(extra) > 0 {
				line += ", " + strings.Join(extra, ", ")
			}
			if d, _ := p["description"].(string); d != "" {
				line += ": " + d
			}
			fmt.Fprintln(w, line)
		}
	}
	if ps, ok := m["params"].(map[string]any); ok && len(ps) > 0 {
		fmt.Fprintln(w, "  parameters:")
		printParams("    ", ps)
	}
	types, _ := m["types"].(map[string]any)
	for _, tn := range sortedMapKeys(types) {
		t, _ := types[tn].(map[string]any)
		kind := "service"
		if b, _ := t["batch"].(bool); b {
			kind = "batch"
		}
		def := ""
		if m["default_type"] == tn {
			def = ", default"
		}
		fmt.Fprintf(w, "  type %s (%s%s)", tn, kind, def)
		if d, _ := t["description"].(string); d != "" {
			fmt.Fprintf(w, ": %s", d)
		}
		fmt.Fprintln(w)
		if ps, ok := t["params"].(map[string]any); ok && len(ps) > 0 {
			printParams("    param ", ps)
		}
		procs, _ := t["processes"].([]any)
		for _, p := range procs {
			pm, _ := p.(map[string]any)
			fmt.Fprintf(w, "    process %v: %v\n", pm["name"], pm["command"])
		}
		proms, _ := t["promises"].([]any)
		for _, p := range proms {
			pm, _ := p.(map[string]any)
			fmt.Fprintf(w, "    promise %v (%v, every %v)\n", pm["name"], pm["kind"], pm["period"])
		}
		conn, _ := t["connection"].(map[string]any)
		for _, k := range sortedMapKeys(conn) {
			fmt.Fprintf(w, "    connection %s = %v\n", k, conn[k])
		}
	}
}

func sortedMapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
