package partition

import (
	"fmt"
	"strings"
)

// computeLimits summarises what is enforced.
func computeLimits(cg *cgroups, users, rlimits bool, why []string) Limits {
	l := Limits{Cgroup: cg.version, CPU: cg.cpu, Memory: cg.mem, Pids: cg.pids, Rlimits: rlimits, Users: users}
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
	if rlimits {
		have = append(have, "rlimits (open files, core, file size)")
	}
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
