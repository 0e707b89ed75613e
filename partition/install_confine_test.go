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

// An install runs as the install user, may leave a process behind (it is
// killed, the install succeeds), and its tree ends up root's with no group
// or other write bit and no set-uid bit, whatever modes the install gave.
func TestInstallConfinedAndTreeTakenBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the install user needs the node to run as root")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd on this host")
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711) // t.TempDir's parents are 0700
	}
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, 6)
	cfg.Users = true
	m := startManager(t, cfg)
	defer m.Close()
	rc := mustParse(installRecipe("confined",
		"id -u > uid; mkdir -p open/sub; echo x > open/sub/f; chmod 0777 open open/sub; chmod 4777 open/sub/f; "+
			"setsid sh -c 'echo $$ > bg.pid; exec sleep 1000' > /dev/null 2>&1 < /dev/null & "+
			"while [ ! -s bg.pid ]; do sleep 0.01; done"))
	if err := m.Apply(InstanceSpec{ID: "c", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "c", PhaseRunning)
	soft := m.SoftwareDir(rc.CID().String())
	if uid := readFileString(t, filepath.Join(soft, "uid")); uid != strconv.Itoa(m.installAs.UID) || uid == "0" {
		t.Errorf("install ran as uid %s, want the install user's %d", uid, m.installAs.UID)
	}
	pid, err := strconv.Atoi(readFileString(t, filepath.Join(soft, "bg.pid")))
	if err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("the install's background process %d outlived the install", pid)
	}
	err = filepath.Walk(soft, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s belongs to %d:%d after the install, want root", p, st.Uid, st.Gid)
		}
		if fi.Mode()&(0o022|os.ModeSetuid|os.ModeSetgid) != 0 && fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s has mode %v after the install: writable by others or set-uid", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.cg.version != "none" {
		for _, d := range m.cg.dirsOf(installCgroup) {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("install cgroup %s left after the install", d)
			}
		}
	}
	if !strings.HasPrefix(m.installAs.Name, m.cfg.UserPrefix) {
		t.Errorf("install user %s does not share the node's prefix %s", m.installAs.Name, m.cfg.UserPrefix)
	}
}
