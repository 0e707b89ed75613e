package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// cgroups places partitions in cgroups (v2 or v1) written directly through
// cgroupfs. Each partition N gets BASE/pN and installs BASE/install, where
// BASE is a directory named after the node (weft-<hash of the data dir>)
// under the node's own cgroup, so several nodes on one machine never share
// cgroups. Nothing of BASE outlives the node: a failed probe removes what
// it made, Close removes every empty cgroup, and Start (sweep) kills and
// removes what a node killed with SIGKILL left that it does not adopt.
type cgroups struct {
	version string // "v2", "v1" or "none"
	// v2: the directory holding pN.
	base string
	// v1: controller name → directory holding pN.
	ctl    map[string]string
	cpu    bool
	mem    bool
	pids   bool
	freeze bool // a freezer (v2 cgroup.freeze, v1 freezer) stops forks while killing
	why    []string
}

// v1Controllers are the v1 hierarchies used: cpu (quota), cpuacct (usage),
// memory (limit, usage), pids, and freezer (to kill a cgroup's processes
// without their forking meanwhile).
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids", "freezer"}

// installCgroup is the cgroup of installs, beside the partitions'.
const installCgroup = "install"

// partCgroup names partition idx's cgroup.
func partCgroup(idx int) string { return "p" + strconv.Itoa(idx) }

// detectCgroups finds what this host lets the node do. name is the node's
// directory name inside its own cgroup. Mounts and the node's own cgroups
// are read with prometheus/procfs (/proc/self/mountinfo, whose mount root
// says which part of a hierarchy is mounted in a container, and
// /proc/self/cgroup).
func detectCgroups(name string, enabled bool) *cgroups {
	c := &cgroups{version: "none", ctl: map[string]string{}}
	if !enabled {
		c.why = append(c.why, "cgroups disabled by configuration")
		return c
	}
	if procFSErr != nil {
		c.why = append(c.why, "cannot read /proc: "+procFSErr.Error())
		return c
	}
	mounts, err := procFS.GetMounts()
	if err != nil {
		c.why = append(c.why, "cannot read /proc/self/mountinfo: "+err.Error())
		return c
	}
	self, err := procFS.Self()
	var own []procfs.Cgroup
	if err == nil {
		own, err = self.Cgroups()
	}
	if err != nil {
		c.why = append(c.why, "cannot read /proc/self/cgroup: "+err.Error())
		return c
	}
	type mnt struct{ point, root string }
	v1mount := map[string]mnt{} // controller → mount
	var v2mount *mnt
	for _, mi := range mounts {
		switch mi.FSType {
		case "cgroup2":
			if v2mount == nil {
				v2mount = &mnt{mi.MountPoint, mi.Root}
			}
		case "cgroup":
			for _, want := range v1Controllers {
				if _, ok := mi.SuperOptions[want]; ok {
					v1mount[want] = mnt{mi.MountPoint, mi.Root}
				}
			}
		}
	}
	// under is where the cgroup at path (as /proc/self/cgroup names it)
	// appears below a mount of its hierarchy.
	under := func(m mnt, path string) string {
		if m.root != "/" && m.root != "" {
			if rel, ok := strings.CutPrefix(path, m.root); ok {
				path = rel
			}
		}
		return filepath.Join(m.point, path)
	}
	v1path := map[string]string{}
	v2path := ""
	for _, cg := range own {
		if cg.HierarchyID == 0 && len(cg.Controllers) == 0 {
			v2path = cg.Path
			continue
		}
		for _, ctl := range cg.Controllers {
			v1path[ctl] = cg.Path
		}
	}
	// Prefer v2 when its hierarchy has the controllers (unified mode).
	if v2mount != nil {
		if ctrls, err := os.ReadFile(filepath.Join(v2mount.point, "cgroup.controllers")); err == nil && len(strings.TrimSpace(string(ctrls))) > 0 {
			if c.tryV2(under(*v2mount, v2path), name, strings.Fields(string(ctrls))) {
				return c
			}
		}
	}
	if len(v1mount) > 0 {
		dirs := map[string]string{}
		for ctl, m := range v1mount {
			dirs[ctl] = under(m, v1path[ctl])
		}
		c.tryV1(dirs, name)
		if c.cpu || c.mem || c.pids {
			return c
		}
		for _, d := range c.ctl {
			_ = os.Remove(d)
		}
		c.ctl = map[string]string{}
	} else if v2mount == nil {
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
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
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
		// Nothing usable (a hybrid host's v2 mount without these
		// controllers): leave nothing behind.
		_ = os.Remove(base)
		return false
	}
	c.version, c.base = "v2", base
	if _, err := os.Stat(filepath.Join(base, "cgroup.freeze")); err == nil {
		c.freeze = true
	}
	return true
}

func (c *cgroups) tryV1(own map[string]string, name string) {
	for _, ctl := range v1Controllers {
		parent, ok := own[ctl]
		if !ok {
			if ctl != "freezer" {
				c.why = append(c.why, "cgroup v1: no "+ctl+" hierarchy")
			}
			continue
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
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
		case "freezer":
			file = "freezer.state"
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
			_ = os.Remove(dir) // only when empty: a live earlier run's stays
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
		case "freezer":
			c.freeze = true
		}
	}
	if len(c.ctl) > 0 {
		c.version = "v1"
	}
}

// dirs returns every directory of partition idx's cgroup.
func (c *cgroups) dirs(idx int) []string { return c.dirsOf(partCgroup(idx)) }

// dirsOf returns every directory of the node's cgroup name (one per v1
// hierarchy).
func (c *cgroups) dirsOf(name string) []string {
	switch c.version {
	case "v2":
		return []string{filepath.Join(c.base, name)}
	case "v1":
		var out []string
		seen := map[string]bool{}
		for _, ctl := range v1Controllers {
			if d, ok := c.ctl[ctl]; ok && !seen[d] {
				seen[d] = true
				out = append(out, filepath.Join(d, name))
			}
		}
		return out
	}
	return nil
}

// dirOf is the directory of cgroup name that holds controller ctl's files.
func (c *cgroups) dirOf(ctl, name string) string {
	if c.version == "v2" {
		return filepath.Join(c.base, name)
	}
	if d, ok := c.ctl[ctl]; ok {
		return filepath.Join(d, name)
	}
	return ""
}

func (c *cgroups) dir(ctl string, idx int) string { return c.dirOf(ctl, partCgroup(idx)) }

// create makes partition idx's cgroup: see createNamed.
func (c *cgroups) create(idx int, cpuMillis, memBytes, pidsMax int64) error {
	return c.createNamed(partCgroup(idx), cpuMillis, memBytes, pidsMax)
}

// createNamed makes the cgroup name (reusing an existing one) and sets its
// limits: cpuMillis thousandths of a core, memBytes, pidsMax (0: none,
// which also lifts a limit an earlier use set).
func (c *cgroups) createNamed(name string, cpuMillis, memBytes, pidsMax int64) error {
	if c.version == "none" {
		return nil
	}
	var errs []error
	for _, d := range c.dirsOf(name) {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			errs = append(errs, err)
		}
	}
	w := func(ctl, file, val string) {
		d := c.dirOf(ctl, name)
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
		if c.cpu {
			v := "max " + strconv.Itoa(period)
			if cpuMillis > 0 {
				v = fmt.Sprintf("%d %d", quota, period)
			}
			w("cpu", "cpu.max", v)
		}
		if c.mem {
			v := "max"
			if memBytes > 0 {
				v = strconv.FormatInt(memBytes, 10)
				// Best effort: without swap accounting the file does not exist.
				_ = os.WriteFile(filepath.Join(c.dirOf("memory", name), "memory.swap.max"), []byte("0"), 0)
			}
			w("memory", "memory.max", v)
		}
		if c.pids {
			v := "max"
			if pidsMax > 0 {
				v = strconv.FormatInt(pidsMax, 10)
			}
			w("pids", "pids.max", v)
		}
	case "v1":
		if c.cpu {
			w("cpu", "cpu.cfs_period_us", strconv.Itoa(period))
			v := "-1"
			if cpuMillis > 0 {
				v = strconv.FormatInt(quota, 10)
			}
			w("cpu", "cpu.cfs_quota_us", v)
		}
		if c.mem {
			v := "-1"
			if memBytes > 0 {
				v = strconv.FormatInt(memBytes, 10)
			}
			w("memory", "memory.limit_in_bytes", v)
		}
		if c.pids {
			v := "max"
			if pidsMax > 0 {
				v = strconv.FormatInt(pidsMax, 10)
			}
			w("pids", "pids.max", v)
		}
	}
	return errors.Join(errs...)
}

// addTo moves pid into the cgroup name.
func (c *cgroups) addTo(name string, pid int) error {
	var errs []error
	for _, d := range c.dirsOf(name) {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// procs lists the pids in partition idx's cgroup.
func (c *cgroups) procs(idx int) []int { return c.procsOf(partCgroup(idx)) }

// procsOf lists the pids in the cgroup name (every hierarchy's, for v1,
// in case one add failed).
func (c *cgroups) procsOf(name string) []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range c.dirsOf(name) {
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
func (c *cgroups) remove(idx int) error { return c.removeNamed(partCgroup(idx)) }

// removeNamed deletes the cgroup name (it must be empty).
func (c *cgroups) removeNamed(name string) error {
	var errs []error
	for _, d := range c.dirsOf(name) {
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

// children lists the cgroups in the node's directory (every hierarchy's).
func (c *cgroups) children() []string {
	var roots []string
	switch c.version {
	case "v2":
		roots = []string{c.base}
	case "v1":
		for _, d := range c.ctl {
			roots = append(roots, d)
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range roots {
		ents, _ := os.ReadDir(r)
		for _, e := range ents {
			if e.IsDir() && !seen[e.Name()] {
				seen[e.Name()] = true
				out = append(out, e.Name())
			}
		}
	}
	slices.Sort(out)
	return out
}

// sweep kills the processes of, and removes, every cgroup of the node's
// directory that keep does not claim: what a node killed with SIGKILL
// left (its restart adopts what it can first and sweeps the rest).
func (c *cgroups) sweep(keep func(name string) bool) {
	for _, name := range c.children() {
		if keep(name) {
			continue
		}
		c.killAll(name, 5*time.Second)
		_ = c.removeNamed(name)
	}
}

// cleanup removes every empty cgroup of the node and the node's directory
// when nothing is left in it (called at Close; create makes them again).
func (c *cgroups) cleanup() {
	for _, name := range c.children() {
		if len(c.procsOf(name)) == 0 {
			_ = c.removeNamed(name)
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
