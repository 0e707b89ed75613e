//go:build linux

package demo

import (
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/prometheus/procfs"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// becomeSubreaper makes this process the reaper of its orphaned descendants,
// so that processes a killed node leaves behind are re-parented to the demo
// and can be found (descendants) and stopped at cleanup.
func becomeSubreaper() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}

func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }

// procStat returns the parent PID and state letter of pid from /proc.
func procStat(pid int) (ppid int, state byte, ok bool) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, 0, false
	}
	return statOf(p)
}

func statOf(p procfs.Proc) (ppid int, state byte, ok bool) {
	st, err := p.Stat()
	if err != nil || len(st.State) != 1 {
		return 0, 0, false
	}
	return st.PPID, st.State[0], true
}

func isZombie(pid int) bool {
	_, st, ok := procStat(pid)
	return ok && (st == 'Z' || st == 'X')
}

// descendants returns every live process below root (children, their
// children, ...), read from /proc.
func descendants(root int) []int {
	all, err := procfs.AllProcs()
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, p := range all {
		if ppid, _, ok := statOf(p); ok {
			kids[ppid] = append(kids[ppid], p.PID)
		}
	}
	var out []int
	queue := []int{root}
	seen := map[int]bool{root: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range kids[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// reap collects the exit status of pid if it is a zombie child of ours
// (an orphan re-parented to the demo), without blocking.
func reap(pid int) {
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}

// unmountBelow detaches every file system mounted below dir, deepest first:
// as root, a node mounts each busy partition's disk image on it, and a node
// the demo killed (SIGKILL) left them mounted, so the folder could not go.
func unmountBelow(dir string) {
	ms, err := procfs.GetMounts()
	if err != nil {
		return
	}
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	var points []string
	for _, m := range ms {
		if strings.HasPrefix(m.MountPoint, prefix) {
			points = append(points, m.MountPoint)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
