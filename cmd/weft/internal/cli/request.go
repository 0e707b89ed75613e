package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/scheduler"
)

func init() { register(40, newRequestCmd) }

// parseKV parses repeated k=v flags.
func parseKV(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// recipeArg fills body from --recipe: a file is parsed and its params
// validated here (unless partial: a re-request whose parameters the node
// completes from the previous request), then published on the local node
// (POST /v1/recipes) so that the request names it by CID; anything else
// must be a CID.
func recipeArg(ctx context.Context, c *api.Client, arg string, body *api.Request, partial ...bool) error {
	if arg == "" {
		return errors.New("--recipe is required: a recipe file (.toml) or the CID of a published recipe")
	}
	data, ferr := os.ReadFile(arg)
	if ferr != nil {
		if _, err := cid.Decode(arg); err == nil {
			body.RecipeCID = arg
			return nil
		}
		if errors.Is(ferr, os.ErrNotExist) {
			return fmt.Errorf("--recipe %q: no such file, and not a CID", arg)
		}
		return fmt.Errorf("--recipe: %w", ferr)
	}
	rc, err := recipes.Parse(arg, data)
	if err != nil {
		return fmt.Errorf("%w\n(check the recipe with: weft recipe lint %s)", err, arg)
	}
	if len(partial) == 0 || !partial[0] {
		if _, err := rc.ValidateParams(body.Type, body.Params); err != nil {
			return fmt.Errorf("%w\n(the recipe's parameters: weft recipe show %s)", err, arg)
		}
	}
	baseDir, err := filepath.Abs(filepath.Dir(arg))
	if err != nil {
		return err
	}
	pub, err := c.PublishRecipe(ctx, api.PublishRecipe{TOML: string(data), File: arg, BaseDir: baseDir})
	var ae *api.Error
	switch {
	case err == nil && pub.Value.CID != "":
		body.RecipeCID = pub.Value.CID
	case err == nil || errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed):
		body.RecipeTOML = string(data) // the node stores it with the request
	default:
		return fmt.Errorf("publish %s: %w", arg, err)
	}
	return nil
}

func newRequestCmd(g *Globals) *cobra.Command {
	var (
		recipe, typ, state string
		params, sla        []string
		wait               bool
		timeout            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "request NAME [--recipe FILE|CID]",
		Short: "Request an instance from the grid (or change one you requested)",
		Long: `Request an instance of a recipe from the grid: the node announces it, the
nodes that can host it bid, the cheapest fitting bid wins, and the winner runs
it in a partition and reports its connection parameters.

Requesting the same NAME again updates the instance in place or changes its
state: the node reuses the stored recipe, software type, parameters and
constraints, so that '--state stopped|started|destroyed' alone works, each
--param overrides one value (the others keep theirs), a new --recipe
replaces the recipe (parameters it does not declare are dropped) and --sla,
when given, replaces all the constraints. --recipe is required for a new
instance.

--recipe takes a recipe file (parsed, its parameters checked, then published
on this node) or the CID of a published recipe. --sla adds constraints:
node=PEER, region=eu (or any label.KEY=VALUE), colocate=NAME,
anti_affinity=SET, anti_affinity_scope=node|LABEL, max_price=CREDITS,
max_rtt=20ms, wait_for_capacity=true, grace=5s, guardians=N.

With --wait it returns once the instance reached the requested state, or
fails (non-zero) with the reason, e.g. why no node could place it.
With --json it prints the instance: name, instance_id, node, state,
connection, epoch, ...`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.Client()
			if err != nil {
				return err
			}
			body := api.Request{Name: args[0], Type: typ, SLA: sla, State: state}
			if body.Params, err = parseKV("param", params); err != nil {
				return err
			}
			for _, kv := range sla {
				if !strings.Contains(kv, "=") {
					return fmt.Errorf("--sla %q: want KEY=VALUE", kv)
				}
			}
			if state != "" && state != "started" && state != "stopped" && state != "destroyed" {
				return fmt.Errorf("--state %q: want started, stopped or destroyed", state)
			}
			// A re-request of an existing instance reuses its recipe,
			// parameters and constraints on the node: --recipe, each
			// --param and --sla change only what they name.
			_, ierr := c.Instance(ctx, args[0])
			exists := ierr == nil
			switch {
			case recipe != "":
				if err := recipeArg(ctx, c, recipe, &body, exists); err != nil {
					return err
				}
			case !exists && state != "destroyed":
				return recipeArg(ctx, c, "", &body)
			}
			a, err := c.Request(ctx, body)
			if err != nil {
				return fmt.Errorf("request %s: %w", args[0], err)
			}
			if wait {
				w, err := waitMarketInstance(ctx, g, c, args[0], timeout)
				if w.Raw != nil {
					a = w
				}
				if err != nil {
					if g.JSON && w.Raw != nil {
						_ = g.PrintJSON(w.Raw)
					}
					return err
				}
			}
			v := a.Value
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			printMarketInstance(g.Out(), v)
			if !wait && v.State != v.RequestedState {
				fmt.Fprintf(g.Err(), "follow it with: weft instance show %s (or request again with --wait)\n", v.Name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&recipe, "recipe", "", "recipe file (.toml) or CID of a published recipe")
	f.StringVar(&typ, "type", "", "software type (default: the recipe's default type)")
	f.StringArrayVarP(&params, "param", "p", nil, "parameter KEY=VALUE, repeatable (checked against the recipe's schema)")
	f.StringArrayVar(&sla, "sla", nil, "constraint KEY=VALUE, repeatable (node, region, label.K, colocate, anti_affinity, max_price, max_rtt, ...)")
	f.StringVar(&state, "state", "", "requested state: started (default), stopped or destroyed")
	f.BoolVar(&wait, "wait", false, "wait until the instance reached the requested state (or failed)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	_ = cmd.MarkFlagFilename("recipe", "toml")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]cobra.Completion{"started", "stopped", "destroyed"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// waitMarketInstance polls the instance until it reached its requested state
// under the latest request (scheduler.Reached)
// (nil error), failed (an error with the reason) or the timeout passed.
// Progress goes to stderr once the wait lasts more than a second.
func waitMarketInstance(parent context.Context, g *Globals, c *api.Client, name string, timeout time.Duration) (api.Answer[scheduler.InstanceView], error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	start := time.Now()
	last := ""
	prog := g.startProgress(name + ": waiting")
	defer prog.Stop()
	var none api.Answer[scheduler.InstanceView]
	for {
		a, err := c.Instance(ctx, name)
		var ae *api.Error
		switch {
		case err != nil && parent.Err() != nil:
			return none, interrupted(parent, "instance show "+name)
		case err != nil && ctx.Err() != nil:
			return none, fmt.Errorf("%s: gave up waiting after %s (check it with: weft instance show %s)", name, timeout, name)
		case err != nil && a.Raw != nil && !errors.As(err, &ae):
			return a, fmt.Errorf("%s: unexpected instance from the node: %w", name, err)
		case err != nil:
			return none, err
		}
		v := a.Value
		done, failed := scheduler.Reached(v)
		switch {
		case failed != nil:
			return a, fmt.Errorf("%s failed: %s", name, v.Reason)
		case !done && v.Node != "" && v.StatusGeneration < v.Generation:
			v.Reason = "the host is applying the update"
		case done:
			prog.Stop()
			if time.Since(start) > time.Second {
				fmt.Fprintf(g.Err(), "%s: %s after %s\n", name, v.State, time.Since(start).Round(100*time.Millisecond))
			}
			return a, nil
		}
		if now := v.State.String() + " " + v.Reason; now != last && time.Since(start) > time.Second {
			last = now
			msg := v.State.String()
			if v.Reason != "" {
				msg += " (" + v.Reason + ")"
			}
			if prog != nil {
				prog.Describe(name + ": " + msg)
			} else {
				fmt.Fprintf(g.Err(), "%s: %s, %s so far...\n", name, msg, time.Since(start).Round(time.Second))
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return a, interrupted(parent, "instance show "+name)
			}
			why := v.State.String()
			if v.Reason != "" {
				why += ": " + v.Reason
			}
			return a, fmt.Errorf("%s: still %s after %s (check it with: weft instance show %s)", name, why, timeout, name)
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// printMarketInstance writes an instance for people.
func printMarketInstance(w io.Writer, v scheduler.InstanceView) {
	node := v.Node
	if node == "" {
		node = "(not placed)"
	}
	fmt.Fprintf(w, "%s  %s on %s", v.Name, v.State, node)
	if v.Epoch > 0 {
		fmt.Fprintf(w, " (epoch %d)", v.Epoch)
	}
	fmt.Fprintln(w)
	if v.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", v.Reason)
	}
	if v.Health != scheduler.HealthUnknown || v.Restarts > 0 {
		fmt.Fprintf(w, "  health: %s", v.Health)
		if v.Restarts > 0 {
			fmt.Fprintf(w, ", %d restarts", v.Restarts)
		}
		if v.LastExit != nil {
			fmt.Fprintf(w, ", last exit: %s", *v.LastExit)
		}
		fmt.Fprintln(w)
	}
	if v.Result != "" {
		fmt.Fprintf(w, "  result: %s\n", v.Result)
	}
	keys := make([]string, 0, len(v.Connection))
	for k := range v.Connection {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, v.Connection[k])
	}
}
