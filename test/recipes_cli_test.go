package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rcpNode is one 'weft node' process for the recipe tests.
type rcpNode struct {
	dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

func rcpBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	return bin
}

func rcpStart(t *testing.T, bin string, portBase string, args ...string) *rcpNode {
	t.Helper()
	n := &rcpNode{dir: t.TempDir(), log: &bytes.Buffer{}}
	all := append([]string{"--data-dir", n.dir, "node", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--preset", "local", "--mdns", "off", "--partitions", "1", "--port-base", portBase}, args...)
	n.cmd = exec.Command(bin, all...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		killUnder(n.dir)
		if t.Failed() {
			t.Logf("node %s log:\n%s", n.dir, n.log.String())
		}
	})
	rcpWait(t, 20*time.Second, func() error {
		_, err := os.Stat(filepath.Join(n.dir, "api.json"))
		return err
	})
	return n
}

// rcpRun runs weft with args and returns stdout, stderr and the exit code.
func rcpRun(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("weft %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func rcpWait(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rcpRepoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecipeLintCLI(t *testing.T) {
	bin := rcpBin(t)
	for _, f := range []string{"webserver.toml", "primes.toml", "site.toml", "textstats.toml"} {
		if out, errOut, code := rcpRun(t, bin, "recipe", "lint", rcpRepoFile(t, "recipes/examples/"+f)); code != 0 {
			t.Errorf("%s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	src := "name = \"web\"\nversion = \"1\"\ncolour = \"red\"\n[types.default]\n[[types.default.processes]]\nname = \"a\"\ncommand = \"{{.Params.missing}}\"\nrestart = \"sometimes\"\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := rcpRun(t, bin, "recipe", "lint", bad)
	if code == 0 {
		t.Fatalf("invalid recipe: exit 0\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:(\d+): .+`)
	want := map[string]bool{"3": false, "7": false, "8": false}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q is not FILE:LINE: message", l)
			continue
		}
		want[m[1]] = true
	}
	for l, seen := range want {
		if !seen {
			t.Errorf("no problem reported on line %s:\n%s", l, out)
		}
	}
}

func TestRecipePublishAndShowAcrossNodes(t *testing.T) {
	bin := rcpBin(t)
	a := rcpStart(t, bin, "11000")
	var st struct {
		Addrs []string `json:"addrs"`
	}
	out, errOut, code := rcpRun(t, bin, "--data-dir", a.dir, "status", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Addrs) == 0 {
		t.Fatalf("status: %d %s %s", code, out, errOut)
	}
	b := rcpStart(t, bin, "11100", "--bootstrap", st.Addrs[0])

	// A recipe with a 2.5 MiB artifact given by source.
	dir := t.TempDir()
	art := make([]byte, 5<<19)
	_, _ = rand.Read(art)
	if err := os.WriteFile(filepath.Join(dir, "data.bin"), art, 0o644); err != nil {
		t.Fatal(err)
	}
	src := "name = \"art\"\nversion = \"1\"\n[[files]]\npath = \"data.bin\"\nsource = \"data.bin\"\n[types.default]\n[[types.default.processes]]\nname = \"run\"\ncommand = \"/bin/true\"\n"
	rf := filepath.Join(dir, "art.toml")
	if err := os.WriteFile(rf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var pub struct {
		CID   string `json:"cid"`
		Files []struct {
			CID string `json:"cid"`
		} `json:"files"`
	}
	out, errOut, code = rcpRun(t, bin, "--data-dir", a.dir, "recipe", "publish", rf, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &pub) != nil || pub.CID == "" || len(pub.Files) != 1 || pub.Files[0].CID == "" {
		t.Fatalf("publish: exit %d\n%s\n%s", code, out, errOut)
	}
	// The same file gives the same CID in lint (no node involved).
	lintOut, _, _ := rcpRun(t, bin, "recipe", "lint", rcpRepoFile(t, "recipes/examples/webserver.toml"))
	webOut, _, code := rcpRun(t, bin, "--data-dir", a.dir, "recipe", "publish", rcpRepoFile(t, "recipes/examples/webserver.toml"), "--json")
	var web struct {
		CID string `json:"cid"`
	}
	if code != 0 || json.Unmarshal([]byte(webOut), &web) != nil || !strings.Contains(lintOut, web.CID) {
		t.Fatalf("lint and publish disagree on the CID:\n%s\n%s", lintOut, webOut)
	}

	var shown struct {
		CID  string `json:"cid"`
		Name string `json:"name"`
	}
	rcpWait(t, 30*time.Second, func() error {
		out, errOut, code := rcpRun(t, bin, "--data-dir", b.dir, "recipe", "show", pub.CID, "--json")
		if code != 0 {
			return errors.New(errOut)
		}
		return json.Unmarshal([]byte(out), &shown)
	})
	if shown.CID != pub.CID || shown.Name != "art" {
		t.Fatalf("show on the other node: %+v", shown)
	}
	// The artifact came along and is served by B's own API, byte for byte.
	out, errOut, code = rcpRun(t, bin, "--data-dir", b.dir, "recipe", "list", "--json")
	if code != 0 || !strings.Contains(out, pub.CID) {
		t.Fatalf("list on B: %s %s", out, errOut)
	}
	blocks := 0
	_ = filepath.WalkDir(filepath.Join(b.dir, "content", "blocks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blocks++
		}
		return nil
	})
	if blocks < 5 { // recipe + manifest + 3 chunks
		t.Fatalf("B holds %d blocks after show: the artifact was not fetched", blocks)
	}
	var ep struct{ Addr, Token string }
	epb, err := os.ReadFile(filepath.Join(b.dir, "api.json"))
	if err != nil || json.Unmarshal(epb, &ep) != nil {
		t.Fatalf("api.json: %v", err)
	}
	req, _ := http.NewRequest("GET", "http://"+ep.Addr+"/v1/content/"+pub.Files[0].CID, nil)
	req.Header.Set("Authorization", "Bearer "+ep.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, art) {
		t.Fatalf("GET /v1/content/%s on B: status %d, %d bytes (want the %d-byte artifact)", pub.Files[0].CID, resp.StatusCode, len(got), len(art))
	}
}

func TestRecipePublishWithoutNode(t *testing.T) {
	bin := rcpBin(t)
	dir := t.TempDir()
	f := rcpRepoFile(t, "recipes/examples/primes.toml")
	out, errOut, code := rcpRun(t, bin, "--data-dir", dir, "recipe", "publish", f, "--json")
	var pub struct {
		CID string `json:"cid"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &pub) != nil || pub.CID == "" {
		t.Fatalf("publish: %d %s %s", code, out, errOut)
	}
	out, errOut, code = rcpRun(t, bin, "--data-dir", dir, "recipe", "show", pub.CID, "--json")
	if code != 0 || !strings.Contains(out, `"cid": "`+pub.CID+`"`) {
		t.Fatalf("show: %d %s %s", code, out, errOut)
	}
}

// TestCLIPolish checks, on the real binary, what a person meets first: the
// errors without a node and after the node died say how to start one, an
// unknown instance points at the list, shell completion prints a script,
// and the built-in examples can be written out anywhere.
func TestCLIPolish(t *testing.T) {
	bin := rcpBin(t)
	empty := t.TempDir()
	_, stderr, code := rcpRun(t, bin, "--data-dir", empty, "status")
	if code != 1 || !strings.Contains(stderr, "no weft node answers for data dir "+empty) || !strings.Contains(stderr, "weft node --data-dir "+empty) {
		t.Fatalf("no node: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code = rcpRun(t, bin, "--data-dir", empty, "instance", "show"); code != 2 || !strings.Contains(stderr, "weft instance show --help") {
		t.Fatalf("missing argument: exit %d, stderr %q", code, stderr)
	}

	out, _, code := rcpRun(t, bin, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_weft") {
		t.Fatalf("completion bash: exit %d, %d bytes", code, len(out))
	}

	n := rcpStart(t, bin, "11200")
	_, stderr, code = rcpRun(t, bin, "--data-dir", n.dir, "instance", "show", "nope")
	if code != 1 || !strings.Contains(stderr, "weft instance list") {
		t.Fatalf("unknown instance: exit %d, stderr %q", code, stderr)
	}
	// Completion asks the running node.
	out, _, _ = rcpRun(t, bin, "--data-dir", n.dir, "__complete", "grid", "admit", "")
	var st struct {
		PeerID string `json:"peer_id"`
	}
	sj, _, _ := rcpRun(t, bin, "--data-dir", n.dir, "status", "--json")
	if err := json.Unmarshal([]byte(sj), &st); err != nil || st.PeerID == "" || !strings.Contains(out, st.PeerID) {
		t.Fatalf("completion of peer IDs: %q (status %q, %v)", out, sj, err)
	}
	// The node dies without removing its api.json.
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	_, stderr, code = rcpRun(t, bin, "--data-dir", n.dir, "peers")
	if code != 1 || !strings.Contains(stderr, "left from a node that stopped") {
		t.Fatalf("stale api.json: exit %d, stderr %q", code, stderr)
	}

	// Outside the source tree: the examples built into the binary.
	cmd := exec.Command(bin, "recipe", "examples", "--out", "ex", "--json")
	cmd.Dir = t.TempDir()
	b, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		File, CID, Written string
	}
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) == 0 {
		t.Fatalf("recipe examples: %v %s", err, b)
	}
	for _, r := range rows {
		_, stderr, code := rcpRun(t, bin, "recipe", "lint", filepath.Join(cmd.Dir, r.Written))
		if code != 0 {
			t.Fatalf("lint %s: %s", r.Written, stderr)
		}
	}
}
