package partition

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestOthersCanReach(t *testing.T) {
	root := t.TempDir()
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil { // t.TempDir's parents are 0700
			t.Fatal(err)
		}
	}
	open := filepath.Join(root, "open", "deeper")
	closed := filepath.Join(root, "closed", "inside")
	for _, d := range []string{open, closed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "closed"), 0o700); err != nil {
		t.Fatal(err)
	}
	if ok, at := othersCanReach(filepath.Join(open, "x")); !ok {
		t.Errorf("%s: stopped at %s", open, at)
	}
	ok, at := othersCanReach(filepath.Join(closed, "x"))
	if ok || at != filepath.Join(root, "closed") {
		t.Errorf("%s: ok=%v at %q, want stopped at the 0700 directory", closed, ok, at)
	}
	// A symlink from an open place into a closed one does not help.
	link := filepath.Join(root, "open", "link")
	if err := os.Symlink(closed, link); err != nil {
		t.Fatal(err)
	}
	if ok, _ := othersCanReach(filepath.Join(link, "x")); ok {
		t.Errorf("%s reaches through a symlink into a 0700 directory", link)
	}
}

func TestReachableExecutableCopiesAndRefreshes(t *testing.T) {
	home := t.TempDir()
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(home, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho v1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	got, err := reachableExecutable(exe, filepath.Join(runDir, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if got == exe || !strings.HasPrefix(got, runDir) {
		t.Fatalf("unreachable executable not copied: %s", got)
	}
	if fi, err := os.Stat(got); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("copy: %v %v", fi, err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho version 2\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := reachableExecutable(exe, filepath.Join(runDir, "bin")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); !strings.Contains(string(b), "version 2") {
		t.Errorf("copy not refreshed after the executable changed: %q", b)
	}
	// A world-reachable executable is used where it is.
	if p, err := reachableExecutable("/bin/sh", filepath.Join(runDir, "bin2")); err != nil || p != "/bin/sh" {
		t.Errorf("/bin/sh: %q %v", p, err)
	}
}

// A node running as root with its data dir and executable under a 0700
// directory (the default ~/.weft under /root): partitions and software go
// to the run dir, the executable is copied there, instances run as their
// users, files the node writes into a partition (directories included)
// belong to the partition's user, and the user's directories keep their
// modes.
func TestDataDirUnderPrivateParentUnderRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("separate partition users need the node to run as root; not root here")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd on this host")
	}
	top := t.TempDir()
	for d := top; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil { // t.TempDir's parents are 0700
			t.Fatal(err)
		}
	}
	home := filepath.Join(top, "home") // like /root
	dataDir := filepath.Join(home, ".weft")
	runDir := filepath.Join(top, "run")
	for _, d := range []string{home, dataDir, runDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(home, "bin", "tool")
	if err := os.MkdirAll(filepath.Dir(tool), 0o700); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nid -u > \"$HOME/ran\"\ncat \"$WEFT_SOFTWARE/installed.txt\" >> \"$HOME/ran\"\nexec sleep 1000\n"
	if err := os.WriteFile(tool, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dataDir)
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	cfg.Users = true
	cfg.UserPrefix = "wefttest"
	cfg.InstallUser = "wefttestinstall"
	cfg.RunDir = runDir
	cfg.Weft = tool
	m := startManager(t, cfg)
	defer m.Close()
	rc := mustParse(`
name = "private-parent"
version = "1"
[install]
commands = ["echo installed-by-$(id -un) > installed.txt"]
[types.default]
[[types.default.files]]
path = "conf/deep/app.conf"
content = "x=1"
[[types.default.processes]]
name = "main"
command = "{{.Weft}}"
`)
	if err := m.Apply(InstanceSpec{ID: "p", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "p", PhaseRunning)
	dir := m.partDir(st.Partition)
	if !strings.HasPrefix(dir, runDir+string(filepath.Separator)) {
		t.Errorf("partition dir %s is not in the run dir %s", dir, runDir)
	}
	if !strings.HasPrefix(m.weft, runDir+string(filepath.Separator)) {
		t.Errorf("{{.Weft}} is %s, not a copy in the run dir", m.weft)
	}
	var ran string
	waitFor(t, "the instance ran", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "ran"))
		ran = string(b)
		return strings.Contains(ran, "installed-by")
	})
	uid := m.users[st.Partition].UID
	if got := strings.Fields(ran)[0]; got != strconv.Itoa(uid) {
		t.Errorf("instance ran as uid %s, want the partition user's %d", got, uid)
	}
	if !strings.Contains(ran, "installed-by-wefttestinstall") {
		t.Errorf("install step output: %q", ran)
	}
	for _, p := range []string{"conf", "conf/deep", "conf/deep/app.conf"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if s := fi.Sys().(*syscall.Stat_t); int(s.Uid) != uid {
			t.Errorf("%s belongs to uid %d, want the partition user's %d", p, s.Uid, uid)
		}
	}
	for _, p := range []string{home, dataDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode changed to %v (%v)", p, fi.Mode().Perm(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "partitions", "state.cbor")); err != nil {
		t.Errorf("desired state not kept in the data dir: %v", err)
	}

	// Once its last instance is destroyed, the node leaves nothing in the
	// run dir when it closes.
	if err := m.SetState("p", StateDestroyed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance destroyed", func() bool { _, ok := m.Get("p"); return !ok })
	m.Close()
	if _, err := os.Stat(filepath.Join(runDir, "nodes")); !os.IsNotExist(err) {
		t.Errorf("the run dir still holds the node's directory after its last instance and Close: %v", err)
	}
}

// A root node that never runs an instance creates nothing in the run dir
// (test suites start many nodes and kill some).
func TestNoRunDirWithoutInstancesUnderRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("separate partition users need the node to run as root; not root here")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd on this host")
	}
	top := t.TempDir()
	for d := top; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(top, "home", ".weft")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dataDir)
	cfg.Users = true
	cfg.UserPrefix = "wefttest"
	cfg.InstallUser = "wefttestinstall"
	cfg.RunDir = filepath.Join(top, "run")
	m := startManager(t, cfg)
	if !strings.HasPrefix(m.partDir(0), cfg.RunDir) {
		t.Errorf("partition 0 would live in %s, not in the run dir", m.partDir(0))
	}
	if _, err := os.Stat(cfg.RunDir); !os.IsNotExist(err) {
		t.Errorf("run dir created by a node without instances: %v", err)
	}
	m.Close()
	if _, err := os.Stat(cfg.RunDir); !os.IsNotExist(err) {
		t.Errorf("run dir left by a node without instances: %v", err)
	}
}
