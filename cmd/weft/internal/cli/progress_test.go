package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A wait longer than a second with stderr not a terminal (a pipe, a log, a
// buffer): no spinner is drawn, the progress is plain lines, and with
// --json stdout is exactly the JSON result.
func TestProgressNotDrawnWithoutTerminal(t *testing.T) {
	f := newFakeNode(t)
	f.pendingFor = progressDelay + 500*time.Millisecond
	web := exampleRecipe(t, "webserver.toml")
	for _, mode := range []string{"human", "json"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"--data-dir", f.dir, "request", "web-" + mode, "--recipe", web, "--wait"}
			if mode == "json" {
				args = append(args, "--json")
			}
			stdout, stderr, err := cliRun(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(stderr, "\r\x1b") || strings.ContainsAny(stdout, "\r\x1b") {
				t.Fatalf("something was drawn:\nstdout %q\nstderr %q", stdout, stderr)
			}
			if !strings.Contains(stderr, "web-"+mode+": pending (auction open)") {
				t.Fatalf("no progress line on stderr: %q", stderr)
			}
			if mode == "json" {
				var v map[string]any
				if err := json.Unmarshal([]byte(stdout), &v); err != nil || v["state"] != "started" {
					t.Fatalf("stdout is not the instance as JSON: %v %q", err, stdout)
				}
			}
		})
	}
}

func TestProgressNilIsNoop(t *testing.T) {
	g := &Globals{err: new(strings.Builder)}
	p := g.startProgress("x")
	if p != nil {
		t.Fatal("progress started on a non-terminal")
	}
	p.Describe("y")
	p.Stop()
}

// Storing a recipe's files without a node, stderr not a terminal: the
// files are stored and nothing is drawn, even with no delay.
func TestTransferNotDrawnWithoutTerminal(t *testing.T) {
	old := progressDelay
	progressDelay = 0
	defer func() { progressDelay = old }()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blob.bin"), bytes.Repeat([]byte("weft"), 1<<18), 0o600); err != nil {
		t.Fatal(err)
	}
	web, err := os.ReadFile(exampleRecipe(t, "webserver.toml"))
	if err != nil {
		t.Fatal(err)
	}
	rc := string(web) + "\n[[files]]\npath = \"share/blob.bin\"\nsource = \"blob.bin\"\n"
	if err := os.WriteFile(filepath.Join(dir, "web.toml"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := cliRun(t, "--data-dir", t.TempDir(), "recipe", "publish", filepath.Join(dir, "web.toml"))
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if strings.ContainsAny(stdout+stderr, "\r\x1b") || !strings.HasPrefix(stdout, "bafy") {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
}
