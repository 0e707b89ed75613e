package partition

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// cgroups places partitions in cgroups (v2 or v1) written directly through
// cgroupfs. Each partition N gets BASE/pN, where BASE is a directory named
// after the node (weft-<hash of the data dir>) under the node's own cgroup,
// so several nodes on one machine never share cgroups.
type cgroups struct {
	version string // "v2", "v1" or "none"
	// v2: the directory holding pN.
	base string
	// v1: controller name → directory holding pN.
	ctl  map[string]string
	cpu  bool
	mem  bool
	pids bool
	why  []string
}

// v1Controllers are the v1 hierarchies used: cpu (quota), cpuacct (usage),
// memory (limit, usage) and pids.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// detectCgroups finds what this host lets the node do. name is the node's
// directory name inside its own cgroup.
func detectCgroups(name string, enabled bool) *cgroups {
	c := &cgroups{version: "none", ctl: map[string]string{}}
	if !enabled {
		c.why = append(c.why, "cgroups disabled by configuration")
		return c
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		c.why = append(c.why, "cannot read /proc/self/mounts: "+err.Error())
		return c
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		c.why = append(c.why, "cannot read /proc/self/cgroup: "+err.Error())
		return c
	}
	v1mount := map[string]string{} // controller → mount point
	v2mount := ""
	sc := bufio.NewScanner(strings.NewReader(string(mounts)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup2":
			if v2mount == "" {
				v2mount = f[1]
			}
		case "cgroup":
			for _, o := range strings.Split(f[3], ",") {
				for _, want := range v1Controllers {
					if o == want {
						v1mount[o] = f[1]
					}
				}
			}
		}
	}
	v1path := map[string]string{}
	v2path := ""
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2path = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			v1path[ctl] = parts[2]
		}
	}
	// Prefer v2 when its hierarchy has the controllers (unified mode).
	if v2mount != "" {
		if ctrls, err := os.ReadFile(filepath.Join(v2mount, "cgroup.controllers")); err == nil && len(strings.TrimSpace(string(ctrls))) > 0 {
			if c.tryV2(filepath.Join(v2mount, v2path), name, strings.Fields(string(ctrls))) {
				return c
			}
		}
	}
	if len(v1mount) > 0 {
		c.tryV1(v1mount, v1path, name)
		if c.cpu || c.mem || c.pids {
			return c
		}
	} else if v2mount == "" {
		c.why = append(c.why, "no cgroup filesystem mounted")
	}
	c.version = "none"
	return c
}

func (c *cgroups) tryV2(own, name string, avail []string) bool {
	has := map[string]bool{}
	for _, a := range avail {
		has[a] = true
	}
	base := filepath.Join(own, name)
	if err := os.MkdirAll(base, 0o755); err != nil {
		c.why = append(c.why, "cgroup v2: cannot create "+base+": "+err.Error())
		return false
	}
	var want []string
	for _, ctl := range []string{"cpu", "memory", "pids"} {
		if has[ctl] {
			want = append(want, "+"+ctl)
		}
	}
	// Controllers must be enabled in the parent (our own cgroup) and in base.
	// cgroup v2 refuses that (EBUSY) while our own cgroup holds processes —
	// the node itself, e.g. as a systemd service with Delegate=yes — so the
	// node then moves into a leaf of its own cgroup, as systemd's
	// delegation guide recommends, and tries again.
	enable := func(dir string) (errs []error) {
		for _, w := range want {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(w), 0); err != nil {
				errs = append(errs, fmt.Errorf("cannot enable %s in %s: %w", w[1:], dir, err))
			}
		}
		return errs
	}
	errs := enable(own)
	if slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, syscall.EBUSY) }) {
		leaf := filepath.Join(own, name+"-node")
		err := os.MkdirAll(leaf, 0o755)
		if err == nil {
			err = os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
		}
		if err != nil {
			c.why = append(c.why, fmt.Sprintf("cgroup v2: cannot move the node into %s: %v", leaf, err))
		} else {
			errs = enable(own)
		}
	}
	for _, err := range append(errs, enable(base)...) {
		c.why = append(c.why, fmt.Sprintf("cgroup v2: %v (run the node in a cgroup of its own with delegation, e.g. systemd Delegate=yes)", err))
	}
	enabled, _ := os.ReadFile(filepath.Join(base, "cgroup.subtree_control"))
	for _, e := range strings.Fields(string(enabled)) {
		switch e {
		case "cpu":
			c.cpu = true
		case "memory":
			c.mem = true
		case "pids":
			c.pids = true
		}
	}
	if !c.cpu && !c.mem && !c.pids {
		return false
	}
	c.version, c.base = "v2", base
	return true
}

func (c *cgroups) tryV1(mounts, paths map[string]string, name string) {
	for _, ctl := range v1Controllers {
		m, ok := mounts[ctl]
		if !ok {
			c.why = append(c.why, "cgroup v1: no "+ctl+" hierarchy")
			continue
		}
		dir := filepath.Join(m, paths[ctl], name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.why = append(c.why, fmt.Sprintf("cgroup v1: cannot create %s: %v", dir, err))
			continue
		}
		// Probe: a child must accept a limit.
		probe := filepath.Join(dir, "probe")
		_ = os.Mkdir(probe, 0o755)
		var file, val string
		switch ctl {
		case "cpu":
			file, val = "cpu.cfs_quota_us", "100000"
		case "memory":
			file, val = "memory.limit_in_bytes", "1073741824"
		case "pids":
			file, val = "pids.max", "512"
		case "cpuacct":
			file = "cpuacct.usage"
		}
		var err error
		if val != "" {
			err = os.WriteFile(filepath.Join(probe, file), []byte(val), 0)
		} else {
			_, err = os.ReadFile(filepath.Join(probe, file))
		}
		_ = os.Remove(probe)
		if err != nil {
			c.why = append(c.why, fmt.Sprintf("cgroup v1 %s: %v", ctl, err))
			continue
		}
		c.ctl[ctl] = dir
		switch ctl {
		case "cpu":
			c.cpu = true
		case "memory":
			c.mem = true
		case "pids":
			c.pids = true
		}
	}
	if len(c.ctl) > 0 {
		c.version = "v1"
	}
}

// dirs returns every directory of partition idx's cgroup.
func (c *cgroups) dirs(idx int) []string {
	p := "p" + strconv.Itoa(idx)
	switch c.version {
	case "v2":
		return []string{filepath.Join(c.base, p)}
	case "v1":
		var out []string
		seen := map[string]bool{}
		for _, ctl := range v1Controllers {
			if d, ok := c.ctl[ctl]; ok && !seen[d] {
				seen[d] = true
				out = append(out, filepath.Join(d, p))
			}
		}
		return out
	}
	return nil
}

func (c *cgroups) dir(ctl string, idx int) string {
	p := "p" + strconv.Itoa(idx)
	if c.version == "v2" {
		return filepath.Join(c.base, p)
	}
	if d, ok := c.ctl[ctl]; ok {
		return filepath.Join(d, p)
	}
	return ""
}

// create makes partition idx's cgroup (reusing an existing one) and sets
// its limits: cpuMillis thousandths of a core, memBytes, pidsMax (0: none).
func (c *cgroups) create(idx int, cpuMillis, memBytes, pidsMax int64) error {
	if c.version == "none" {
		return nil
	}
	var errs []error
	for _, d := range c.dirs(idx) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			errs = append(errs, err)
		}
	}
	w := func(ctl, file, val string) {
		d := c.dir(ctl, idx)
		if d == "" {
			return
		}
		if err := os.WriteFile(filepath.Join(d, file), []byte(val), 0); err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %w", file, val, err))
		}
	}
	const period = 100000 // µs
	quota := max(cpuMillis*period/1000, 1000)
	switch c.version {
	case "v2":
		if c.cpu && cpuMillis > 0 {
			w("cpu", "cpu.max", fmt.Sprintf("%d %d", quota, period))
		}
		if c.mem && memBytes > 0 {
			w("memory", "memory.max", strconv.FormatInt(memBytes, 10))
			// Best effort: without swap accounting the file does not exist.
			_ = os.WriteFile(filepath.Join(c.dir("memory", idx), "memory.swap.max"), []byte("0"), 0)
		}
		if c.pids && pidsMax > 0 {
			w("pids", "pids.max", strconv.FormatInt(pidsMax, 10))
		}
	case "v1":
		if c.cpu && cpuMillis > 0 {
			w("cpu", "cpu.cfs_period_us", strconv.Itoa(period))
			w("cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10))
		}
		if c.mem && memBytes > 0 {
			w("memory", "memory.limit_in_bytes", strconv.FormatInt(memBytes, 10))
		}
		if c.pids && pidsMax > 0 {
			w("pids", "pids.max", strconv.FormatInt(pidsMax, 10))
		}
	}
	return errors.Join(errs...)
}

// add moves pid into partition idx's cgroup.
func (c *cgroups) add(idx, pid int) error {
	var errs []error
	for _, d := range c.dirs(idx) {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// procs lists the pids in partition idx's cgroup (every controller's, for
// v1, in case one add failed).
func (c *cgroups) procs(idx int) []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range c.dirs(idx) {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// cpuNanos is the partition's cumulative CPU time.
func (c *cgroups) cpuNanos(idx int) (int64, bool) {
	switch c.version {
	case "v2":
		b, err := os.ReadFile(filepath.Join(c.dir("cpu", idx), "cpu.stat"))
		if err != nil {
			return 0, false
		}
		if v, ok := statField(b, "usage_usec"); ok {
			return v * 1000, true
		}
	case "v1":
		d := c.dir("cpuacct", idx)
		if d == "" {
			return 0, false
		}
		b, err := os.ReadFile(filepath.Join(d, "cpuacct.usage"))
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// memBytes is the partition's memory in use, without reclaimable file cache.
func (c *cgroups) memBytes(idx int) (int64, bool) {
	d := c.dir("memory", idx)
	if d == "" || !c.mem {
		return 0, false
	}
	usageFile, inactive := "memory.current", "inactive_file"
	if c.version == "v1" {
		usageFile, inactive = "memory.usage_in_bytes", "total_inactive_file"
	}
	b, err := os.ReadFile(filepath.Join(d, usageFile))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false
	}
	if st, err := os.ReadFile(filepath.Join(d, "memory.stat")); err == nil {
		if in, ok := statField(st, inactive); ok && in < v {
			v -= in
		}
	}
	return v, true
}

// remove deletes partition idx's cgroup (it must be empty).
func (c *cgroups) remove(idx int) error {
	var errs []error
	for _, d := range c.dirs(idx) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func statField(b []byte, key string) (int64, bool) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			v, err := strconv.ParseInt(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cleanup removes the empty cgroups of partitions 0..n-1 and the node's
// directory when nothing is left in it (called at Close; create makes
// them again).
func (c *cgroups) cleanup(n int) {
	for i := 0; i < n; i++ {
		if len(c.procs(i)) == 0 {
			_ = c.remove(i)
		}
	}
	switch c.version {
	case "v2":
		_ = os.Remove(c.base)
	case "v1":
		for _, d := range c.ctl {
			_ = os.Remove(d)
		}
	}
}
