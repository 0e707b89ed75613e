package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// jsonExempt are the runnable commands that are not client commands
// printing a result, with the reason; every other command must be in the
// table of TestJSONEveryClientCommand.
var jsonExempt = map[string]string{
	"weft node":                  "the node itself: it serves, it prints no result",
	"weft demo":                  "tested in package demo (its last --json line is the summary)",
	"weft tool httpd":            "a hidden server for recipes",
	"weft instance connect":      "runs until interrupted (its --json line is tested in test/instance_connect_test.go)",
	"weft tool try":              "a hidden check for recipes: one line, ok or denied",
	"weft completion bash":       "prints a shell script",
	"weft completion zsh":        "prints a shell script",
	"weft completion fish":       "prints a shell script",
	"weft completion powershell": "prints a shell script",
}

// TestJSONEveryClientCommand runs every client command with --json against
// a node and checks that stdout is exactly JSON (one value, nothing else),
// and that no command of the tree is left out.
func TestJSONEveryClientCommand(t *testing.T) {
	f := newFakeNode(t)
	web := exampleRecipe(t, "webserver.toml")
	primes := exampleRecipe(t, "primes.toml")
	out := t.TempDir()
	type tc struct {
		path string // the command tested, as CommandPath prints it
		args []string
		want string // a field the output must hold
	}
	cases := []tc{
		{"weft status", []string{"status"}, "peer_id"},
		{"weft peers", []string{"peers"}, "state"},
		{"weft grid init", []string{"grid", "init", "--name", "lab", "--out", filepath.Join(out, "lab.grid")}, "founder"},
		{"weft grid id", []string{"grid", "id"}, "peer_id"},
		{"weft grid show", []string{"grid", "show"}, "members"},
		{"weft grid admit", []string{"grid", "admit", fakePeer}, "members"},
		{"weft grid revoke", []string{"grid", "revoke", fakePeer}, "revoked"},
		{"weft recipe lint", []string{"recipe", "lint", web}, "valid"},
		{"weft recipe publish", []string{"recipe", "publish", web}, "cid"},
		{"weft recipe list", []string{"recipe", "list"}, "cid"},
		{"weft recipe show", []string{"recipe", "show", web}, "cid"},
		{"weft recipe examples", []string{"recipe", "examples"}, "cid"},
		{"weft partition list", []string{"partition", "list"}, "instance_id"},
		{"weft partition run", []string{"partition", "run", "--recipe", web, "--name", "web"}, "phase"},
		{"weft partition show", []string{"partition", "show", "local-web"}, "processes"},
		{"weft partition start", []string{"partition", "start", "local-web"}, "phase"},
		{"weft partition stop", []string{"partition", "stop", "local-web"}, "phase"},
		{"weft partition destroy", []string{"partition", "destroy", "local-web"}, "phase"},
		{"weft partition logs", []string{"partition", "logs", "local-web"}, "output"},
		{"weft request", []string{"request", "web", "--recipe", web, "--wait"}, "connection"},
		{"weft instance list", []string{"instance", "list"}, "instance_id"},
		{"weft instance show", []string{"instance", "show", "web"}, "node"},
		{"weft job run", []string{"job", "run", "--recipe", primes, "--wait"}, "result"},
		{"weft job show", []string{"job", "show", "job-1"}, "result"},
		{"weft job result", []string{"job", "result", "bafkreiresult", "--out", filepath.Join(out, "result")}, "out"},
		{"weft ui", []string{"ui"}, "url"},
		{"weft version", []string{"version"}, "revision"},
		{"weft job list", []string{"job", "list"}, "result"},
		{"weft node drain", []string{"node", "drain", "--wait"}, "draining"},
		{"weft node undrain", []string{"node", "undrain"}, "hosted"},
		{"weft instance logs", []string{"instance", "logs", "web", "--tail", "5"}, "process"},
		{"weft job logs", []string{"job", "logs", "job-1"}, "data"},
		{"weft instance events", []string{"instance", "events", "web"}, "kind"},
		{"weft instance why", []string{"instance", "why", "web"}, "ranking"},
		{"weft job purge", []string{"job", "purge"}, "job-1"},
		{"weft instance purge", []string{"instance", "purge", "web"}, "web"},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		tested[c.path] = true
		t.Run(strings.ReplaceAll(c.path, " ", "_"), func(t *testing.T) {
			stdout, stderr, err := cliRun(t, append([]string{"--data-dir", f.dir, "--json"}, c.args...)...)
			if err != nil {
				t.Fatalf("%v: %v\nstderr: %s", c.args, err, stderr)
			}
			dec := json.NewDecoder(strings.NewReader(stdout))
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%v: stdout is not JSON: %v\n%s", c.args, err, stdout)
			}
			if dec.More() {
				t.Fatalf("%v: more than one JSON value on stdout:\n%s", c.args, stdout)
			}
			if !strings.Contains(stdout, `"`+c.want+`"`) {
				t.Fatalf("%v: no %q in %s", c.args, c.want, stdout)
			}
		})
	}
	// Every runnable command is tested above, exempt, or another file's.
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		p := cmd.CommandPath()
		if !cmd.Runnable() || cmd.HasSubCommands() || cmd.Name() == "help" || strings.HasPrefix(p, "weft ledger ") {
			return // ledger commands: ledger_test.go
		}
		if !tested[p] && jsonExempt[p] == "" {
			t.Errorf("%s has no --json test (add it to the table, or to jsonExempt with the reason)", p)
		}
	}
	root := NewRoot(nil, nil)
	root.InitDefaultCompletionCmd()
	walk(root)
}
