package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's 'weft completion bash|zsh|fish|powershell'
// prints the scripts; the functions here complete arguments from the
// running node (instance names, local instance IDs, peer IDs). They ask the
// node of --data-dir with a short deadline and offer nothing, silently,
// when no node answers.

// completionTimeout bounds one completion's API call, so a hung node never
// hangs the shell.
const completionTimeout = time.Second

// completeFrom returns a ValidArgsFunction completing the first argument
// with the strings list fetches from the node (with their descriptions,
// "value\tdescription"). Further arguments get no completion.
func completeFrom(g *Globals, list func(ctx context.Context, g *Globals) []string) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
		defer cancel()
		var out []cobra.Completion
		for _, s := range list(ctx, g) {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeInstances completes the names of the instances this node requested.
func completeInstances(g *Globals) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return completeFrom(g, func(ctx context.Context, g *Globals) []string {
		c, err := g.Client()
		if err != nil {
			return nil
		}
		a, err := c.Instances(ctx)
		if err != nil {
			return nil
		}
		out := make([]string, 0, len(a.Value))
		for _, r := range a.Value {
			out = append(out, cobra.CompletionWithDesc(r.Name, r.State.String()))
		}
		return out
	})
}

// completeJobs completes the IDs of batch jobs (instances with a result or
// a batch state) this node requested.
func completeJobs(g *Globals) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return completeFrom(g, func(ctx context.Context, g *Globals) []string {
		c, err := g.Client()
		if err != nil {
			return nil
		}
		a, err := c.Instances(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for _, r := range a.Value {
			if !r.Batch {
				continue
			}
			if r.Name != "" {
				out = append(out, cobra.CompletionWithDesc(r.Name, r.State.String()))
			}
		}
		return out
	})
}

// completeLocalInstances completes the IDs of the instances in this node's
// partitions.
func completeLocalInstances(g *Globals) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return completeFrom(g, func(ctx context.Context, g *Globals) []string {
		c, err := g.Client()
		if err != nil {
			return nil
		}
		a, err := c.Partitions(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for _, r := range a.Value {
			if r.InstanceID != "" {
				out = append(out, cobra.CompletionWithDesc(r.InstanceID, string(r.Phase)))
			}
		}
		return out
	})
}

// completePeers completes the peer IDs of the grid members the node knows.
func completePeers(g *Globals) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return completeFrom(g, func(ctx context.Context, g *Globals) []string {
		c, err := g.Client()
		if err != nil {
			return nil
		}
		a, err := c.Peers(ctx)
		if err != nil {
			return nil
		}
		out := make([]string, 0, len(a.Value))
		for _, r := range a.Value {
			out = append(out, cobra.CompletionWithDesc(r.PeerID, r.State))
		}
		return out
	})
}
