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

// A probe that does not settle on a hierarchy leaves nothing in it: on a
// hybrid host (cgroup v1 plus a v2 mount without cpu, memory or pids) the
// v2 probe used to leave weft-* behind at every start.
func TestCgroupProbeLeavesNothing(t *testing.T) {
	name := "weft-leaktest-" + strconv.Itoa(os.Getpid())
	c := detectCgroups(name, true)
	if c.version == "none" && len(c.why) == 0 {
		t.Skip("no cgroups here")
	}
	defer c.cleanup()
	mounts, err := procFS.GetMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range mounts {
		if mi.FSType != "cgroup" && mi.FSType != "cgroup2" {
			continue
		}
		_ = filepath.WalkDir(mi.MountPoint, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if d.Name() == name {
				used := (c.version == "v2" && p == c.base) || (c.version == "v1" && slicesContains(c.ctl, p))
				if !used {
					t.Errorf("the probe left %s (version %s in use: %s %v)", p, c.version, c.base, c.ctl)
				}
				return filepath.SkipDir
			}
			if strings.Count(p, "/") > 8 {
				return filepath.SkipDir
			}
			return nil
		})
	}
}

func slicesContains(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// A node killed with SIGKILL leaves its cgroups and what runs in them; the
// next start adopts what it can and kills and removes the rest, and Close
// leaves nothing of the node's cgroups.
func TestCgroupsLeftByAKilledNodeAreSwept(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("writing cgroups needs root")
	}
	cfg := testConfig(t.TempDir())
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	m := startManager(t, cfg)
	if m.cg.version == "none" {
		m.Close()
		t.Skip("no cgroups here: " + strings.Join(m.cg.why, "; "))
	}
	m.Close()
	// What the killed node left: a partition's cgroup beyond today's
	// slots, and an install's, each with a process.
	for _, d := range m.cg.dirsOf("") {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var left []*exec.Cmd
	for _, name := range []string{partCgroup(7), installCgroup} {
		if err := m.cg.createNamed(name, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sleep", "600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		left = append(left, cmd)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := m.cg.addTo(name, cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	m2 := startManager(t, cfg)
	for _, cmd := range left {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("leftover %d: %v, want killed by the restart", cmd.Process.Pid, err)
		}
	}
	if got := m2.cg.children(); len(got) != 0 {
		t.Errorf("after the restart the node's cgroups hold %v, want nothing unadopted", got)
	}
	m2.Close()
	for _, d := range append(m2.cg.dirsOf(""), m2.cg.base) {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left after Close", d)
		}
	}
}
