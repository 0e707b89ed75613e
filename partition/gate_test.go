package partition

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A command is in its partition's cgroup and has its rlimits from its very
// first instruction: the process waits behind a gate until the node has
// moved it and set them (before, a process that forked at once could leave
// a child outside the cgroup's memory and CPU limits).
func TestCommandStartsInsideItsLimits(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.Cgroups = true })
	if m.cg.version == "none" {
		t.Skip("no cgroups here: " + strings.Join(m.cg.why, "; "))
	}
	rc := mustParse(`
name = "gate"
version = "1"
[resources]
cpu_millis = 1000
memory = "128MiB"
[types.default]
batch = true
[[types.default.processes]]
name = "main"
command = "/bin/cat"
args = ["/proc/self/cgroup", "/proc/self/limits"]
restart = "never"
`)
	if err := m.Apply(InstanceSpec{ID: "gate", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "gate", PhaseCompleted)
	out, err := os.ReadFile(filepath.Join(m.partDir(st.Partition), "log", "main.log"))
	if err != nil {
		t.Fatal(err)
	}
	suffix := "/p" + strconv.Itoa(st.Partition)
	inside := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		managed := m.cg.version == "v2" && f[0] == "0"
		for _, ctl := range strings.Split(f[1], ",") {
			managed = managed || ctl == "memory"
		}
		if managed {
			inside = strings.HasSuffix(f[2], suffix)
			break
		}
	}
	if !inside {
		t.Fatalf("the command's first instruction ran outside its partition's cgroup (%s):\n%s", suffix, out)
	}
	want := fmt.Sprintf("Max open files            %d", m.cfg.NoFile)
	if !strings.Contains(string(out), want) {
		t.Fatalf("the command's first instruction ran without its rlimits (want %q):\n%s", want, out)
	}
}
