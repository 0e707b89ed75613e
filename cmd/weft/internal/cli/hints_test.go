package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// No api.json in the data dir: the error names the data dir and the command
// that starts a node there.
func TestErrorNoNode(t *testing.T) {
	dir := t.TempDir()
	_, _, err := cliRun(t, "--data-dir", dir, "status")
	if !errors.Is(err, api.ErrNoNode) {
		t.Fatalf("want ErrNoNode, got %v", err)
	}
	for _, want := range []string{"no weft node answers for data dir " + dir, "weft node --data-dir " + dir, "WEFT_DATA_DIR", "is a node running?"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// api.json left by a node that stopped: connection refused says so.
func TestErrorStaleEndpoint(t *testing.T) {
	dir := t.TempDir()
	addr := closedAddr(t)
	if err := api.WriteEndpoint(dir, api.Endpoint{Addr: addr, Token: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"peers"}, {"instance", "list"}, {"partition", "list"}} {
		_, _, err := cliRun(t, append([]string{"--data-dir", dir}, args...)...)
		if !errors.Is(err, api.ErrUnreachable) {
			t.Fatalf("%v: want ErrUnreachable, got %v", args, err)
		}
		for _, want := range []string{addr, "left from a node that stopped", "weft node --data-dir " + dir} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error %q lacks %q", args, err, want)
			}
		}
	}
}

// A malformed api.json says which file and what to do.
func TestErrorMalformedEndpoint(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := cliRun(t, "--data-dir", dir, "status")
	if !errors.Is(err, api.ErrNoNode) || !strings.Contains(err.Error(), filepath.Join(dir, "api.json")+" is malformed") {
		t.Fatalf("got %v", err)
	}
}

// A token another node does not accept: the error says the endpoint is stale.
func TestErrorWrongToken(t *testing.T) {
	f := newFakeNode(t)
	f.token = "rotated"
	_, _, err := cliRun(t, "--data-dir", f.dir, "status")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), "token in api.json is not this node's") {
		t.Fatalf("got %v", err)
	}
}

// Unknown names suggest the command that lists what exists.
func TestErrorUnknownNamesSuggestList(t *testing.T) {
	f := newFakeNode(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"instance", "show", "nope"}, "weft instance list"},
		{[]string{"job", "show", "nope"}, "weft instance list"},
		{[]string{"partition", "show", "nope"}, "weft partition list"},
		{[]string{"partition", "stop", "nope"}, "weft partition list"},
		{[]string{"partition", "logs", "nope"}, "weft partition list"},
		{[]string{"recipe", "show", "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmthnaxhri"}, "weft recipe list"},
		{[]string{"partition", "logs", "local-web", "--process", "nope"}, "weft partition show local-web"},
	}
	for _, c := range cases {
		_, _, err := cliRun(t, append([]string{"--data-dir", f.dir}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want a hint %q, got %v", c.args, c.want, err)
		}
	}
	f.mu.Lock()
	f.notFounder = true
	f.mu.Unlock()
	if _, _, err := cliRun(t, "--data-dir", f.dir, "grid", "admit", fakePeer); err == nil || !strings.Contains(err.Error(), "founder's node of a private grid") {
		t.Errorf("grid admit on a non-founder: %v", err)
	}
	// The API error stays in the chain (callers test for it).
	_, _, err := cliRun(t, "--data-dir", f.dir, "instance", "show", "nope")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("api.Error lost: %v", err)
	}
}

// Command-line mistakes exit 2 and point at the command's help.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"instance", "show"}, "see: weft instance show --help"},
		{[]string{"instance", "show", "--bogus", "x"}, "unknown flag: --bogus"},
		{[]string{"instance", "bogus"}, "its commands: weft instance --help"},
		{[]string{"completion", "tcsh"}, "its commands: weft completion --help"},
		{[]string{"grid", "admit", "a", "b"}, "usage: weft grid admit PEER_ID"},
	}
	for _, c := range cases {
		_, _, err := cliRun(t, append([]string{"--data-dir", t.TempDir()}, c.args...)...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want exit %d with %q, got %v", c.args, ExitUsage, c.want, err)
		}
	}
	// A group without a subcommand prints its help and succeeds.
	for _, group := range []string{"instance", "completion"} {
		out, _, err := cliRun(t, group)
		if err != nil || !strings.Contains(out, "Available Commands") {
			t.Fatalf("weft %s: %v %q", group, err, out)
		}
	}
}

// Ctrl-C during a wait: exit 130, and the message says the request stays
// and how to follow it.
func TestInterruptedWait(t *testing.T) {
	f := newFakeNode(t)
	f.pendingFor = time.Hour
	web := exampleRecipe(t, "webserver.toml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// The signal arrives once the request is in and the wait began.
		for ctx.Err() == nil {
			f.mu.Lock()
			_, in := f.instances["web"]
			f.mu.Unlock()
			if in {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"--data-dir", f.dir, "request", "web", "--recipe", web, "--wait"}, &out, &errOut)
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitInterrupted, errOut.String())
	}
	if !strings.Contains(errOut.String(), "stopped waiting") || !strings.Contains(errOut.String(), "weft instance show web") {
		t.Fatalf("stderr %q", errOut.String())
	}
}

// 'job result --out DIR' into a directory that already holds files fails
// before fetching anything, and says what to do (pasting the README's
// 'weft job result CID --out ./out' twice).
func TestJobResultIntoNonEmptyDir(t *testing.T) {
	f := newFakeNode(t)
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "count.txt"), []byte("9592\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := cliRun(t, "--data-dir", f.dir, "job", "result", "bafkreiresult", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "is not empty") || !strings.Contains(err.Error(), "pick another --out") {
		t.Fatalf("job result into a non-empty dir: %v", err)
	}
	if _, _, err := cliRun(t, "--data-dir", f.dir, "job", "result", "bafkreiresult", "--out", filepath.Join(out, "new")); err != nil {
		t.Fatalf("job result into a new dir: %v", err)
	}
}

// 'grid init' onto an existing grid file refuses, and says why and what
// to do instead.
func TestGridInitExistingFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "lab.grid")
	if _, _, err := cliRun(t, "--data-dir", filepath.Join(dir, "d"), "grid", "init", "--name", "lab", "--out", out); err != nil {
		t.Fatal(err)
	}
	_, _, err := cliRun(t, "--data-dir", filepath.Join(dir, "d"), "grid", "init", "--name", "lab", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "never overwrites") || !strings.Contains(err.Error(), "another --out") {
		t.Fatalf("grid init onto an existing file: %v", err)
	}
}
