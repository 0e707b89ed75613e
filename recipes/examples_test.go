package recipes

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file runs the example recipes with real OS processes, the way a
// partition would (a minimal runner: files, install, processes, promises),
// so that a broken shell line in an example fails here. Service types need
// the weft binary for 'weft tool httpd': set WEFT_BIN (make test does).

type miniPartition struct {
	ctx  TemplateContext
	st   *SoftwareType
	r    *Recipe
	out  *Rendered
	proc []*exec.Cmd
}

func newMiniPartition(t *testing.T, r *Recipe, typ string, params map[string]string) *miniPartition {
	t.Helper()
	st, err := r.Type(typ)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := r.ValidateParams(typ, params)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ctx := TemplateContext{
		Params:    vals,
		Ports:     map[string]int{},
		Host:      "127.0.0.1",
		Weft:      os.Getenv("WEFT_BIN"),
		Node:      NodeInfo{PeerID: "12D3KooWTest"},
		Instance:  "test-instance",
		Type:      typ,
		Partition: PartitionInfo{ID: 7, Dir: filepath.Join(root, "p"), Tmp: filepath.Join(root, "p", "tmp"), Out: filepath.Join(root, "out"), Software: filepath.Join(root, "sw")},
	}
	for _, d := range []string{ctx.Partition.Dir, ctx.Partition.Tmp, ctx.Partition.Out, ctx.Partition.Software} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, pn := range st.Ports {
		ctx.Ports[pn] = freePort(t)
	}
	mp := &miniPartition{ctx: ctx, st: st, r: r}
	// Install: recipe files, then the install commands, in the software dir.
	for _, f := range r.Files {
		writeFile(t, filepath.Join(ctx.Partition.Software, f.Path), f.Content, f.Mode)
	}
	cmds, env, err := r.Install.RenderInstall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		cmd := exec.Command("/bin/sh", "-c", c)
		cmd.Dir = ctx.Partition.Software
		cmd.Env = envList(env)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install %q: %v\n%s", c, err, out)
		}
	}
	mp.out, err = st.Render(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mp.out.Files {
		writeFile(t, filepath.Join(ctx.Partition.Dir, f.Path), f.Content, f.Mode)
	}
	return mp
}

func envList(extra map[string]string) []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C"}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

func writeFile(t *testing.T, p, content string, mode FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode.Perm()); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (mp *miniPartition) start(t *testing.T) {
	t.Helper()
	for _, p := range mp.out.Processes {
		cmd := exec.Command(p.Command, p.Args...)
		cmd.Dir = p.Dir
		cmd.Env = envList(p.Env)
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", p.Name, err)
		}
		mp.proc = append(mp.proc, cmd)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
}

// runBatch runs the processes one after another to completion.
func (mp *miniPartition) runBatch(t *testing.T) {
	t.Helper()
	for _, p := range mp.out.Processes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a bound, not a measure: CI machines are shared
		cmd := exec.CommandContext(ctx, p.Command, p.Args...)
		cmd.Dir = p.Dir
		cmd.Env = envList(p.Env)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("process %s: %v\n%s", p.Name, err, out)
		}
	}
}

func (mp *miniPartition) check(p Promise) error {
	switch p.Kind {
	case PromiseHTTP:
		c := http.Client{Timeout: p.Timeout.D()}
		resp, err := c.Get(p.Target)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != p.ExpectStatus || !strings.Contains(string(b), p.ExpectBody) {
			return fmt.Errorf("status %d, body %q", resp.StatusCode, b)
		}
	case PromiseTCP:
		c, err := net.DialTimeout("tcp", p.Target, p.Timeout.D())
		if err != nil {
			return err
		}
		c.Close()
	case PromiseCommand:
		cmd := exec.Command("/bin/sh", "-c", p.Command)
		cmd.Dir = mp.ctx.Partition.Dir
		cmd.Env = envList(nil)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
	}
	return nil
}

// waitPromises waits until every promise passes.
func (mp *miniPartition) waitPromises(t *testing.T) {
	t.Helper()
	for _, p := range mp.out.Promises {
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := mp.check(p)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("promise %s never passed: %v", p.Name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestExamplePrimesCountsPrimes(t *testing.T) {
	r := mustParseFile(t, "examples/primes.toml")
	for n, want := range map[string]string{"100000": "9592", "10": "4", "2": "0", "3": "1", "65537": "6542", "65538": "6543", "1000000": "78498"} {
		mp := newMiniPartition(t, r, "", map[string]string{"n": n})
		mp.runBatch(t)
		b, err := os.ReadFile(filepath.Join(mp.ctx.Partition.Out, "count.txt"))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Fatalf("n=%s: count.txt = %q, %v; want %s", n, b, err, want)
		}
	}
}

// TestExamplePrimesMemoryDoesNotGrowWithN: the sieve is segmented, so a
// large n runs in a few MiB. A plain sieve keeps one array entry per
// composite below n (≈ 50 bytes each in mawk: 2.7 GiB for the largest n the
// schema allows, against the recipe's 256MiB), and fails here.
func TestExamplePrimesMemoryDoesNotGrowWithN(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sieve for n = 3000000 (about a second)")
	}
	r := mustParseFile(t, "examples/primes.toml")
	mp := newMiniPartition(t, r, "", map[string]string{"n": "3000000"})
	for i, p := range mp.out.Processes {
		// Same command, under a 64 MiB address-space limit.
		args := append([]string{"-c", `ulimit -v 65536 && exec "$0" "$@"`, p.Command}, p.Args...)
		mp.out.Processes[i].Command, mp.out.Processes[i].Args = "/bin/sh", args
	}
	mp.runBatch(t)
	b, err := os.ReadFile(filepath.Join(mp.ctx.Partition.Out, "count.txt"))
	if err != nil || strings.TrimSpace(string(b)) != "216816" {
		t.Fatalf("n=3000000 under 64 MiB: count.txt = %q, %v; want 216816", b, err)
	}
}

func TestExampleTextstatsJob(t *testing.T) {
	r := mustParseFile(t, "examples/textstats.toml")
	mp := newMiniPartition(t, r, "", map[string]string{"text": "to be or not to be\nthat is the question"})
	mp.runBatch(t)
	b, err := os.ReadFile(filepath.Join(mp.ctx.Partition.Out, "stats.txt"))
	if err != nil || string(b) != "lines 2\nwords 10\nchars 40\n" {
		t.Fatalf("stats.txt = %q, %v", b, err)
	}
	if _, err := r.ValidateParams("job", nil); err == nil {
		t.Fatal("the required text parameter was not required")
	}
	if _, err := r.ValidateParams("job", map[string]string{"text": "x", "refresh": "3"}); err == nil {
		t.Fatal("a server-only parameter was accepted by the job type")
	}
}

func weftBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		t.Skip("WEFT_BIN is not set (make test sets it): service examples need 'weft tool httpd'")
	}
	return bin
}

func TestExampleServices(t *testing.T) {
	weftBin(t)
	for _, c := range []struct {
		file, typ string
		params    map[string]string
		page      string // connection "url" must serve a body containing this
	}{
		{"examples/webserver.toml", "", nil, "hello from weft"},
		{"examples/webserver.toml", "", map[string]string{"message": "bonjour <weft>"}, "bonjour &lt;weft&gt;"},
		{"examples/site.toml", "", map[string]string{"title": "Notes", "beat": "1"}, "<h1>Notes</h1>"},
		{"examples/textstats.toml", "server", map[string]string{"text": "a b c", "refresh": "1"}, "words 3"},
	} {
		t.Run(filepath.Base(c.file)+"/"+c.typ, func(t *testing.T) {
			mp := newMiniPartition(t, mustParseFile(t, c.file), c.typ, c.params)
			mp.start(t)
			mp.waitPromises(t)
			url := mp.out.Connection["url"]
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), c.page) {
				t.Fatalf("%s: %q does not hold %q", url, b, c.page)
			}
		})
	}
}
