package partition

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// setRlimits applies the partition rlimits to a just-started process:
// open files, no core dumps, and a file size cap at the disk quota. They are
// inherited by its children. (Set right after start: a process could open
// files before; the window is a few microseconds.)
func (m *Manager) setRlimits(pid int, in *instance) {
	lim := func(res int, v uint64) {
		r := unix.Rlimit{Cur: v, Max: v}
		if err := unix.Prlimit(pid, res, &r, nil); err != nil {
			m.cfg.Log.Debug("partition: prlimit", "pid", pid, "resource", res, "err", err)
		}
	}
	lim(unix.RLIMIT_NOFILE, m.cfg.NoFile)
	lim(unix.RLIMIT_CORE, 0)
	m.mu.Lock()
	var disk int64
	if in.recipe != nil {
		if t, err := in.recipe.Type(in.rec.Type); err == nil {
			disk = int64(t.Resources.DiskBytes)
		}
	}
	m.mu.Unlock()
	if disk > 0 {
		lim(unix.RLIMIT_FSIZE, uint64(disk))
	}
}

// computeLimits summarises what is enforced.
func computeLimits(cg *cgroups, users bool, why []string) Limits {
	l := Limits{Cgroup: cg.version, CPU: cg.cpu, Memory: cg.mem, Pids: cg.pids, Rlimits: true, Users: users}
	l.Reasons = append(append(l.Reasons, cg.why...), why...)
	l.Reasons = append(l.Reasons, "network bytes are not metered: partitions share the host network namespace")
	l.Enforced = l.CPU && l.Memory
	var have []string
	if cg.version != "none" {
		var ctl []string
		for _, c := range []struct {
			on   bool
			name string
		}{{cg.cpu, "cpu"}, {cg.mem, "memory"}, {cg.pids, "pids"}} {
			if c.on {
				ctl = append(ctl, c.name)
			}
		}
		have = append(have, fmt.Sprintf("cgroup %s (%s)", cg.version, strings.Join(ctl, ", ")))
	}
	have = append(have, "rlimits (open files, core, file size)")
	if users {
		have = append(have, "one Unix user per partition")
	}
	if l.Enforced {
		l.Summary = "limits enforced: " + strings.Join(have, "; ")
	} else {
		var missing []string
		if !l.CPU {
			missing = append(missing, "CPU")
		}
		if !l.Memory {
			missing = append(missing, "memory")
		}
		l.Summary = fmt.Sprintf("limits not enforced: no %s limit (%s); only %s",
			strings.Join(missing, " or "), strings.Join(cg.why, "; "), strings.Join(have, "; "))
	}
	return l
}
