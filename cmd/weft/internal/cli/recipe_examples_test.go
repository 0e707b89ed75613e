package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 'weft recipe examples --out DIR' run outside the source tree writes the
// built-in examples, byte for byte the files of recipes/examples, and each
// lints clean; a second run keeps them unless --force.
func TestRecipeExamplesOut(t *testing.T) {
	src := filepath.Dir(exampleRecipe(t, "webserver.toml"))
	t.Chdir(t.TempDir())
	stdout, _, err := cliRun(t, "--json", "recipe", "examples", "--out", "ex")
	if err != nil {
		t.Fatal(err)
	}
	var rows []exampleRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Glob(filepath.Join(src, "*.toml"))
	if len(rows) != len(want) || len(rows) < 2 {
		t.Fatalf("%d examples written, the source tree has %d", len(rows), len(want))
	}
	for _, r := range rows {
		got, err := os.ReadFile(r.Written)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := os.ReadFile(filepath.Join(src, r.File))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, orig) {
			t.Fatalf("%s differs from recipes/examples/%s", r.Written, r.File)
		}
		lint, _, err := cliRun(t, "--json", "recipe", "lint", r.Written)
		if err != nil || !strings.Contains(lint, r.CID) {
			t.Fatalf("lint %s: %v %s (want cid %s)", r.Written, err, lint, r.CID)
		}
	}
	if _, _, err := cliRun(t, "recipe", "examples", "--out", "ex"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrote without --force: %v", err)
	}
	if _, _, err := cliRun(t, "recipe", "examples", "--out", "ex", "--force"); err != nil {
		t.Fatal(err)
	}
}
