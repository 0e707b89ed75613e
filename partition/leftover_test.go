package partition

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A batch job's process leaves a process behind in a session of its own
// (setsid) and exits 0: the job completes (its own exit decides), and the
// leftover is dead by then, before anything of the partition is read —
// with cgroups, and without (the node's own user: found by its HOME).
func TestBatchLeftoverKilledBeforeCompletion(t *testing.T) {
	for _, cg := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cg), func(t *testing.T) {
			m := newTestManager(t, func(c *Config) { c.Cgroups = cg })
			if cg && m.cg.version == "none" {
				t.Skip("no cgroups here: " + strings.Join(m.cg.why, "; "))
			}
			rc := mustParse(`
name = "leftover"
version = "1"
[types.default]
batch = true
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", '''setsid sh -c 'echo $$ > pid.tmp && mv pid.tmp pid && exec sleep 1000' > /dev/null 2>&1 < /dev/null &
while [ ! -s pid ]; do sleep 0.01; done; exit 0''']
`)
			if err := m.Apply(InstanceSpec{ID: "left", Recipe: rc, State: StateStarted}); err != nil {
				t.Fatal(err)
			}
			st := waitPhase(t, m, "left", PhaseCompleted)
			b, err := os.ReadFile(filepath.Join(m.partDir(st.Partition), "pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file: %q", b)
			}
			if alive(pid) {
				t.Errorf("the job completed while its leftover %d still runs", pid)
			}
		})
	}
}
