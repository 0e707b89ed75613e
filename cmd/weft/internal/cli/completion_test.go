package cli

import (
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "__start_weft",
		"zsh":        "#compdef weft",
		"fish":       "complete -c weft",
		"powershell": "Register-ArgumentCompleter",
	} {
		out, _, err := cliRun(t, "completion", shell)
		if err != nil {
			t.Fatalf("completion %s: %v", shell, err)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("completion %s: no %q in the script (%d bytes)", shell, want, len(out))
		}
	}
}

// completions returns what 'weft __complete ARGS' offers (cobra's hidden
// command the shell scripts call), without descriptions.
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	out, _, err := cliRun(t, append([]string{"__complete"}, args...)...)
	if err != nil {
		t.Fatalf("__complete %v: %v", args, err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || strings.HasPrefix(line, ":") {
			continue // the directive line
		}
		v, _, _ := strings.Cut(line, "\t")
		got = append(got, v)
	}
	return got
}

func TestDynamicCompletion(t *testing.T) {
	f := newFakeNode(t)
	web := exampleRecipe(t, "webserver.toml")
	for _, name := range []string{"web", "wiki"} {
		if _, _, err := cliRun(t, "--data-dir", f.dir, "request", name, "--recipe", web); err != nil {
			t.Fatal(err)
		}
	}
	if got := completions(t, "--data-dir", f.dir, "instance", "show", ""); strings.Join(sorted(got), ",") != "web,wiki" {
		t.Fatalf("instance show: %v", got)
	}
	if got := completions(t, "--data-dir", f.dir, "instance", "show", "wi"); strings.Join(got, ",") != "wiki" {
		t.Fatalf("instance show wi: %v", got)
	}
	if got := completions(t, "--data-dir", f.dir, "partition", "logs", ""); strings.Join(got, ",") != "local-web" {
		t.Fatalf("partition logs: %v", got)
	}
	if got := completions(t, "--data-dir", f.dir, "grid", "admit", ""); strings.Join(got, ",") != fakePeer {
		t.Fatalf("grid admit: %v", got)
	}
	if _, _, err := cliRun(t, "--data-dir", f.dir, "job", "run", "--recipe", exampleRecipe(t, "primes.toml")); err != nil {
		t.Fatal(err)
	}
	if got := completions(t, "--data-dir", f.dir, "job", "show", ""); strings.Join(got, ",") != "job-1" {
		t.Fatalf("job show: %v (only batch jobs)", got)
	}
	// Flags with a fixed set of values.
	if got := completions(t, "request", "web", "--state", ""); strings.Join(got, ",") != "started,stopped,destroyed" {
		t.Fatalf("--state: %v", got)
	}
	// No node: nothing offered, no error, no file names.
	dir := t.TempDir()
	out, _, err := cliRun(t, "--data-dir", dir, "__complete", "instance", "show", "")
	if err != nil || strings.TrimSpace(out) != ":4" {
		t.Fatalf("no node: %q %v", out, err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
