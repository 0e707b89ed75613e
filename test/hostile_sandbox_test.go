package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The hostile-recipe suite for the partition sandbox: each attack is a
// recipe run on a real node, with an assertion that it is blocked, that
// the job completes or fails with a clear reason, that its result (fetched
// with weft job result) holds no file from outside its partition, and that
// a bystander service keeps serving. TestHostileSandboxRoot runs it on a
// node running as root (partition users, private /tmp); the non-root run
// (an unprivileged user's node: Landlock alone) repeats the Landlock cases.

func TestHostileSandboxRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the root run of the sandbox suite needs root")
	}
	hsbSuite(t, nil)
}

func TestHostileSandboxNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the non-root run starts the node as an unprivileged user, which needs root to arrange")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	hsbSuite(t, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}})
}

// hsbNode is one node of the suite, run as cred (nil: as the test).
type hsbNode struct {
	t        *testing.T // the suite's (for setup and cleanup)
	bin, dir string
	cred     *syscall.Credential
	cmd      *exec.Cmd
	log      procLog
	portBase int
	ppp      int
}

func hsbSuite(t *testing.T, cred *syscall.Credential) {
	src := os.Getenv("WEFT_BIN")
	if src == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	n := hsbStart(t, src, cred)
	var st struct {
		Sandbox map[string]any `json:"sandbox"`
	}
	n.json(t, &st, "status", "--json")
	t.Logf("sandbox: %v", st.Sandbox)
	if abi, _ := st.Sandbox["landlock_abi"].(float64); abi < 6 {
		t.Skipf("Landlock ABI %v < 6 on this kernel: the suite needs files, ports and scoping", st.Sandbox["landlock_abi"])
	}
	for _, k := range []string{"fs", "bind_ports", "scoped_signals", "rlimits"} {
		if st.Sandbox[k] != true {
			t.Fatalf("sandbox.%s = %v on a kernel with Landlock ABI ≥ 6: %v", k, st.Sandbox[k], st.Sandbox)
		}
	}
	if want := cred == nil; st.Sandbox["private_tmp"] != want {
		t.Fatalf("sandbox.private_tmp = %v, want %v (root: %v)", st.Sandbox["private_tmp"], want, want)
	}

	// A bystander: it must keep serving through every attack.
	msg := fmt.Sprintf("bystander %d", rand.Int64())
	by := n.run(t, "bystander", repoFileText(t, "recipes/examples/webserver.toml"), "--param", "message="+msg)
	if by.Phase != "running" {
		t.Fatalf("bystander: %s (%s)", by.Phase, by.Error)
	}
	url := by.Connection["url"]
	mktPoll(t, 30*time.Second, func() error { return fetchPage(url, msg) })

	// The node's secrets: every file of the data dir, plus one anyone may read.
	world := filepath.Join(n.dir, "world-readable.txt")
	if err := os.WriteFile(world, []byte(fmt.Sprintf("world-readable secret %d\n", rand.Int64())), 0o644); err != nil {
		t.Fatal(err)
	}
	n.chown(world)
	secrets := map[string][]byte{}
	ents, _ := os.ReadDir(n.dir)
	for _, e := range ents {
		if e.Type().IsRegular() {
			if b, err := os.ReadFile(filepath.Join(n.dir, e.Name())); err == nil && len(b) >= 8 {
				secrets[filepath.Join(n.dir, e.Name())] = b
			}
		}
	}
	for _, name := range []string{"identity.key", "api.token"} {
		if _, ok := secrets[filepath.Join(n.dir, name)]; !ok {
			t.Fatalf("no %s in the data dir %s (%v)", name, n.dir, ents)
		}
	}
	nodePID := n.cmd.Process.Pid

	t.Run("read the node's key, token and ledger", func(t *testing.T) {
		var script strings.Builder
		script.WriteString("i=0\n")
		for p := range secrets {
			fmt.Fprintf(&script, "i=$((i+1)); {{.Weft}} tool try read %q > $WEFT_OUT/try-$i 2>&1; cp %q $WEFT_OUT/copy-$i 2>/dev/null; "+
				"cat /proc/%d/root%s > $WEFT_OUT/proc-$i 2>/dev/null\n", p, p, nodePID, p)
		}
		fmt.Fprintf(&script, "ls -la %q > $WEFT_OUT/ls 2>&1\nexit 0\n", n.dir)
		st := n.run(t, "thief", hsbBatch("thief", "", script.String()))
		res := n.result(t, st)
		for name, b := range res {
			if strings.HasPrefix(filepath.Base(name), "try-") && !strings.HasPrefix(string(b), "denied:") {
				t.Errorf("%s: a read of the data dir was allowed: %q", name, b)
			}
		}
		hsbNoSecrets(t, res, secrets)
		n.destroy(t, "thief")
	})

	t.Run("bind outside the port range", func(t *testing.T) {
		outside := n.portBase + 3*n.ppp // partition 3's range: never this job's
		script := fmt.Sprintf("{{.Weft}} tool try bind 127.0.0.1:{{.Ports.a}} > $WEFT_OUT/inside 2>&1\n"+
			"{{.Weft}} tool try bind 127.0.0.1:%d > $WEFT_OUT/outside 2>&1\n"+
			"{{.Weft}} tool try bind 127.0.0.1:0 > $WEFT_OUT/any 2>&1\nexit 0\n", outside)
		st := n.run(t, "squatter", hsbBatch("squatter", `ports = ["a"]`, script))
		res := n.result(t, st)
		if got := string(res["inside"]); got != "ok\n" {
			t.Errorf("bind inside the partition's range: %q, want ok", got)
		}
		for _, k := range []string{"outside", "any"} {
			if got := string(res[k]); !strings.Contains(got, "permission denied") {
				t.Errorf("bind %s the range: %q, want permission denied", k, got)
			}
		}
		n.destroy(t, "squatter")
	})

	t.Run("write past disk in many files", func(t *testing.T) {
		script := `i=0; while [ $i -lt 16 ]; do i=$((i+1)); head -c 131072 /dev/zero > $WEFT_OUT/f$i; done; exit 0`
		st := n.run(t, "filler", hsbBatch("filler", "", script), "--expect-failure")
		if st.Phase != "failed" || !strings.Contains(st.Error, "disk quota exceeded") {
			t.Errorf("a job writing 2 MiB with disk = 1MiB: %s (%q), want failed: disk quota exceeded", st.Phase, st.Error)
		}
		if st.ResultCID != "" {
			t.Errorf("a job over its disk left a result %s", st.ResultCID)
		}
		n.destroy(t, "filler")
	})

	t.Run("write past disk in /tmp", func(t *testing.T) {
		script := `n=0; i=0; while [ $i -lt 16 ]; do i=$((i+1)); head -c 131072 /dev/zero > /tmp/f$i 2>/dev/null && n=$((n+1)); done; echo $n > $WEFT_OUT/written; exit 0`
		st := n.run(t, "tmpfiller", hsbBatch("tmpfiller", "", script), "--expect-failure")
		switch {
		case st.Phase == "failed" && strings.Contains(st.Error, "disk quota exceeded"):
			// As root: /tmp is the run's own tmpfs, at most disk big and
			// counted with the partition's tree.
		case st.Phase == "completed":
			// Without root: the shared /tmp is out of the sandbox's reach.
			res := n.result(t, st)
			w, err := strconv.Atoi(strings.TrimSpace(string(res["written"])))
			if err != nil || w*131072 > 1<<20 {
				t.Errorf("a job with disk = 1MiB wrote %q × 128 KiB into /tmp", res["written"])
			}
		default:
			t.Errorf("a job writing 2 MiB into /tmp with disk = 1MiB: %s (%q)", st.Phase, st.Error)
		}
		n.destroy(t, "tmpfiller")
	})

	t.Run("read another tenant's leftovers in /tmp and /dev/shm", func(t *testing.T) {
		tag := fmt.Sprintf("LEFTOVER-%d", rand.Int64())
		script := fmt.Sprintf(`umask 077; echo %s > /tmp/hsb-left; echo %s > /dev/shm/hsb-left; ipcmk -M 40961 > $WEFT_OUT/ipc 2>&1; exit 0`, tag, tag)
		st := n.run(t, "leaver", hsbBatch("leaver", "", script))
		slot := st.Partition
		// A SysV segment: in the run's own IPC namespace as root (gone
		// with it), refused without root (no namespace to put it in).
		var shmid string
		if _, err := exec.LookPath("ipcmk"); err == nil {
			out := string(n.result(t, st)["ipc"])
			t.Logf("the leaver's ipcmk: %q", out)
			if _, id, ok := strings.Cut(out, "Shared memory id: "); ok {
				shmid = strings.TrimSpace(id)
				if n.cred != nil {
					t.Errorf("a tenant of a non-root node made a SysV segment (%s)", shmid)
				}
			}
		}
		n.destroy(t, "leaver")
		if shmid != "" {
			b, _ := os.ReadFile("/proc/sysvipc/shm")
			for _, l := range strings.Split(string(b), "\n")[1:] {
				// key shmid perms size …: the leaver's has an odd size.
				if f := strings.Fields(l); len(f) > 3 && f[3] == "40961" {
					t.Errorf("the tenant's SysV segment %s is in the host's IPC namespace: %s", shmid, l)
				}
			}
		}
		for _, p := range []string{"/tmp/hsb-left", "/dev/shm/hsb-left"} {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), tag) {
				os.Remove(p)
				t.Errorf("a tenant's %s reached the host's", p)
			}
		}
		st = n.run(t, "finder", hsbBatch("finder", "", `cat /tmp/hsb-left /dev/shm/hsb-left > $WEFT_OUT/found 2>&1; ls -la /tmp /dev/shm >> $WEFT_OUT/found 2>&1; exit 0`))
		if st.Partition != slot {
			t.Logf("the finder ran in partition %d, the leaver in %d", st.Partition, slot)
		}
		res := n.result(t, st)
		if strings.Contains(string(res["found"]), tag) {
			t.Errorf("the next tenant read the leftovers:\n%s", res["found"])
		}
		n.destroy(t, "finder")
	})

	t.Run("signal or ptrace another partition's process", func(t *testing.T) {
		victim := n.run(t, "victim", `
name = "victim"
version = "1"
[types.default]
[[types.default.processes]]
name = "sleeper"
command = "/bin/sleep"
args = ["3600"]
`)
		if victim.Phase != "running" || len(victim.Processes) == 0 {
			t.Fatalf("victim: %s (%s)", victim.Phase, victim.Error)
		}
		pid := victim.Processes[0].PID
		script := fmt.Sprintf("for p in %d %d; do {{.Weft}} tool try signal $p > $WEFT_OUT/signal-$p 2>&1; "+
			"{{.Weft}} tool try ptrace $p > $WEFT_OUT/ptrace-$p 2>&1; kill -KILL $p 2>/dev/null; done; exit 0", pid, nodePID)
		st := n.run(t, "killer", hsbBatch("killer", "", script))
		res := n.result(t, st)
		for _, p := range []int{pid, nodePID} {
			for _, op := range []string{"signal", "ptrace"} {
				if got := string(res[fmt.Sprintf("%s-%d", op, p)]); !strings.HasPrefix(got, "denied:") {
					t.Errorf("%s of pid %d from another partition: %q, want denied", op, p, got)
				}
			}
		}
		var after hsbInstance
		n.json(t, &after, "partition", "show", "victim", "--json")
		if after.Phase != "running" || len(after.Processes) == 0 || after.Processes[0].PID != pid || !after.Processes[0].Running {
			t.Errorf("the victim did not survive: %+v", after)
		}
		n.destroy(t, "killer")
		n.destroy(t, "victim")
	})

	// The node kept serving the bystander through all of it.
	if err := fetchPage(url, msg); err != nil {
		t.Errorf("the bystander stopped serving: %v", err)
	}
}

// hsbInstance is the part of an instance status the suite reads.
type hsbInstance struct {
	ID         string            `json:"instance_id"`
	Phase      string            `json:"phase"`
	Partition  int               `json:"partition"`
	Error      string            `json:"error"`
	ResultCID  string            `json:"result_cid"`
	Connection map[string]string `json:"connection"`
	Processes  []struct {
		PID     int  `json:"pid"`
		Running bool `json:"running"`
	} `json:"processes"`
}

// hsbBatch is a batch recipe running script with /bin/sh, disk = 1MiB.
func hsbBatch(name, typeExtra, script string) string {
	return fmt.Sprintf(`
name = %q
version = "1"
[resources]
memory = "128MiB"
disk = "1MiB"
[types.default]
batch = true
timeout = "60s"
%s
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", '''
%s
''']
`, name, typeExtra, script)
}

func hsbStart(t *testing.T, src string, cred *syscall.Credential) *hsbNode {
	base := t.TempDir()
	// Reachable by an unprivileged node and by partition users.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := &hsbNode{t: t, bin: filepath.Join(base, "weft"), dir: filepath.Join(base, "data"), cred: cred,
		portBase: 10000 + rand.IntN(200)*100, ppp: 10} // below the ephemeral range (32768+), where any outgoing connection may hold a port
	prtCopy(t, src, n.bin)
	if err := os.Mkdir(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n.chown(n.dir)
	n.cmd = exec.Command(n.bin, "--data-dir", n.dir, "node", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--mdns", "off", "--partitions", "4", "--port-base", strconv.Itoa(n.portBase))
	n.cmd.Env = n.env()
	n.cmd.Stdout, n.cmd.Stderr = &n.log, &n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopGently(n.cmd)
		if t.Failed() {
			t.Logf("node log:\n%s", lastN(n.log.logText(), 80))
		}
		killUnder(base)
	})
	mktPoll(t, 60*time.Second, func() error {
		_, _, err := n.weft("status", "--json")
		return err
	})
	return n
}

func (n *hsbNode) env() []string {
	env := slicesDeleteEnv(os.Environ(), "WEFT_DATA_DIR")
	return append(slicesDeleteEnv(env, "HOME"), "HOME="+filepath.Dir(n.dir))
}

func (n *hsbNode) chown(p string) {
	if n.cred != nil {
		if err := os.Chown(p, int(n.cred.Uid), int(n.cred.Gid)); err != nil {
			n.t.Fatal(err)
		}
	}
}

func (n *hsbNode) weft(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, append([]string{"--data-dir", n.dir}, args...)...)
	cmd.Env = n.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: n.cred}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("weft %s: %v: %s", strings.Join(args, " "), err, se.String())
	}
	return so.String(), se.String(), err
}

func (n *hsbNode) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out, _, err := n.weft(args...)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("weft %s: %v: %q", strings.Join(args, " "), err, out)
	}
}

// run runs recipe (TOML text) as instance id and waits until it is
// running, completed or failed; "--expect-failure" among extra only says
// that failing is what the caller wants to see.
func (n *hsbNode) run(t *testing.T, id, recipe string, extra ...string) hsbInstance {
	t.Helper()
	f := filepath.Join(filepath.Dir(n.dir), id+".toml")
	if err := os.WriteFile(f, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"partition", "run", "--recipe", f, "--id", id, "--wait", "--timeout", "90s", "--json"}
	for _, e := range extra {
		if e != "--expect-failure" {
			args = append(args, e)
		}
	}
	_, _, err := n.weft(args...)
	var st hsbInstance
	out, _, serr := n.weft("partition", "show", id, "--json")
	if serr != nil {
		t.Fatalf("%s: %v; %v", id, err, serr)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%s: %v: %q", id, err, out)
	}
	if err != nil && st.Phase != "failed" {
		t.Fatalf("%s: %v (phase %s)", id, err, st.Phase)
	}
	if st.Phase == "completed" && st.ResultCID == "" {
		// The result is stored right after completion.
		mktPoll(t, 30*time.Second, func() error {
			n.json(t, &st, "partition", "show", id, "--json")
			if st.ResultCID == "" {
				return fmt.Errorf("%s completed without a result CID yet (%s)", id, st.Error)
			}
			return nil
		})
	}
	return st
}

// result fetches st's result with weft job result and returns its files
// (by path relative to the result), failing the test if the job did not
// complete or a file of the result is not a regular file.
func (n *hsbNode) result(t *testing.T, st hsbInstance) map[string][]byte {
	t.Helper()
	if st.Phase != "completed" || st.ResultCID == "" {
		t.Fatalf("%s: %s (%q), want completed with a result", st.ID, st.Phase, st.Error)
	}
	out := filepath.Join(filepath.Dir(n.dir), "result-"+st.ID)
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	n.chown(out)
	if _, _, err := n.weft("job", "result", st.ResultCID, "--out", out); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		switch {
		case d.IsDir():
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[rel] = b
		default:
			// A symlink is kept as a link (never followed); its target is
			// checked below like a file's content.
			target, _ := os.Readlink(p)
			files[rel] = []byte("symlink -> " + target)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func (n *hsbNode) destroy(t *testing.T, id string) {
	t.Helper()
	if _, _, err := n.weft("partition", "destroy", id); err != nil {
		t.Fatal(err)
	}
	mktPoll(t, 30*time.Second, func() error {
		_, _, err := n.weft("partition", "show", id, "--json")
		if err == nil {
			return fmt.Errorf("%s still there", id)
		}
		return nil
	})
}

// hsbNoSecrets fails when a file of res holds one of secrets' contents.
func hsbNoSecrets(t *testing.T, res map[string][]byte, secrets map[string][]byte) {
	t.Helper()
	for name, b := range res {
		if strings.HasPrefix(string(b), "symlink -> ") {
			continue // a link's target is a path, not the file's content
		}
		for p, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("the result's %s holds the content of the node's %s", name, p)
			}
		}
	}
}

func repoFileText(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
