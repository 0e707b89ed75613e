package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRootNodeWithDefaultDataDirServesWebserver is `sudo weft node` with
// the defaults on a machine where root's home is 0700: the binary and the
// data dir (~/.weft) sit under a directory no partition user may enter.
// The webserver example must run as a partition user and serve its page,
// and the home directory must keep its mode.
func TestRootNodeWithDefaultDataDirServesWebserver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partitions run as separate users only when the node runs as root; not root here")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd on this host")
	}
	src := os.Getenv("WEFT_BIN")
	if src == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	home := t.TempDir()
	if err := os.Chmod(home, 0o700); err != nil { // like /root
		t.Fatal(err)
	}
	bin := filepath.Join(home, "go", "bin", "weft") // like `go install` as root
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	prtCopy(t, src, bin)
	env := append(os.Environ(), "HOME="+home)
	env = slicesDeleteEnv(env, "WEFT_DATA_DIR")
	weft := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Run(); err != nil {
			return so.String(), fmt.Errorf("weft %s: %v: %s", strings.Join(args, " "), err, se.String())
		}
		return so.String(), nil
	}

	var log bytes.Buffer
	node := exec.Command(bin, "node", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns", "off",
		"--partitions", "2", "--port-base", strconv.Itoa(10000+rand.IntN(200)*100)) // below the ephemeral range
	node.Env = env
	node.Stdout, node.Stderr = &log, &log
	node.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	var partDirs []string
	_, statErr := os.Stat("/var/lib/weft")
	t.Cleanup(func() {
		_ = node.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = node.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-node.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("node log:\n%s", lastN(log.String(), 60))
		}
		delNodeUsers(filepath.Join(home, ".weft"))
		// The node's directory in the run dir (/var/lib/weft/nodes/<hash>).
		for _, d := range partDirs {
			base := filepath.Dir(filepath.Dir(d))
			if filepath.Base(filepath.Dir(base)) == "nodes" {
				killUnder(base)
				_ = os.RemoveAll(base)
				_ = os.Remove(filepath.Dir(base)) // only when empty
				if os.IsNotExist(statErr) {
					_ = os.Remove(filepath.Dir(filepath.Dir(base)))
				}
			}
		}
	})
	mktPoll(t, 30*time.Second, func() error {
		_, err := weft("status", "--json")
		return err
	})

	msg := fmt.Sprintf("served from a private home %d", rand.Int64())
	out, err := weft("partition", "run", "--recipe", repoFile(t, "recipes/examples/webserver.toml"),
		"--name", "web", "--param", "message="+msg, "--wait", "--timeout", "60s", "--json")
	var st struct {
		Phase      string            `json:"phase"`
		Partition  int               `json:"partition"`
		Error      string            `json:"error"`
		Connection map[string]string `json:"connection"`
		Processes  []struct {
			PID int `json:"pid"`
		} `json:"processes"`
	}
	if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
		t.Fatalf("%v; output %q", err, out)
	}
	if err != nil || st.Phase != "running" {
		t.Fatalf("instance %s (%s): %v", st.Phase, st.Error, err)
	}
	var parts []struct {
		Dir  string `json:"dir"`
		User string `json:"user"`
	}
	pout, err := weft("partition", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(pout), &parts); err != nil {
		t.Fatalf("partition list: %v: %q", err, pout)
	}
	for _, p := range parts {
		partDirs = append(partDirs, p.Dir)
	}
	mktPoll(t, 30*time.Second, func() error { return fetchPage(st.Connection["url"], msg) })

	if st.Partition < 0 || st.Partition >= len(parts) || parts[st.Partition].User == "" {
		t.Fatalf("partition %d of %+v has no user of its own", st.Partition, parts)
	}
	if strings.HasPrefix(parts[st.Partition].Dir, home) {
		t.Errorf("partition dir %s is under the private home", parts[st.Partition].Dir)
	}
	if len(st.Processes) == 0 || st.Processes[0].PID <= 0 {
		t.Fatalf("no process: %+v", st.Processes)
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/proc", strconv.Itoa(st.Processes[0].PID)), &sys); err != nil {
		t.Fatal(err)
	}
	if sys.Uid == 0 {
		t.Errorf("the web server runs as root, not as partition user %s", parts[st.Partition].User)
	}
	for _, d := range []string{home, filepath.Join(home, ".weft")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700 kept", d, fi.Mode().Perm(), err)
		}
	}
}

// prtCopy copies the executable src to dst.
func prtCopy(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// slicesDeleteEnv drops the variable name from env.
func slicesDeleteEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
