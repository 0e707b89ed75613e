package partition

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/weftgrid/weft/recipes/clock"
	"golang.org/x/sys/unix"
)

// Stopping everything of a partition or an install. Before the node reads
// or changes a tenant's files (a batch result, a wipe, a chown), nothing of
// the tenant may run: a process left behind (setsid, double fork) could
// swap what the node is about to walk. Process groups do not catch those;
// a cgroup and a Unix user of its own do.

// wallClock times the waits on the kernel: a signalled process dies, a
// cgroup freezes and a pipe drains in real time, whatever the manager's
// clock (Config.Clock) says; a fake clock in a test must neither stall
// nor hurry them. slowStep measures such steps on it too. Everything the
// manager decides by time reads Config.Clock.
var wallClock = clock.System()

// killWait bounds each kill-everything (a fork bomb within its pids limit
// dies within a few rounds).
const killWait = 10 * time.Second

// killAll SIGKILLs every process of the cgroup name until it is empty or
// d has passed, and reports whether it is empty. v2 uses cgroup.kill where
// the kernel has it. Otherwise the cgroup is frozen (when a freezer is
// there) while its processes are signalled, so none forks meanwhile, then
// thawed so the signalled ones die.
func (c *cgroups) killAll(name string, d time.Duration) bool {
	if c.version == "none" {
		return true
	}
	if len(c.procsOf(name)) == 0 {
		return true
	}
	if c.version == "v2" {
		_ = os.WriteFile(filepath.Join(c.dirOf("", name), "cgroup.kill"), []byte("1"), 0)
	}
	deadline := wallClock.Now().Add(d)
	for {
		pids := c.procsOf(name)
		if len(pids) == 0 {
			return true
		}
		if wallClock.Now().After(deadline) {
			return false
		}
		frozen := c.setFrozen(name, true)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range c.procsOf(name) { // forked before the freeze took
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if frozen {
			c.setFrozen(name, false)
		}
		<-wallClock.After(5 * time.Millisecond)
	}
}

// setFrozen freezes or thaws the cgroup name; false when it has no
// freezer. Freezing waits (briefly) until the kernel says it took.
func (c *cgroups) setFrozen(name string, on bool) bool {
	if !c.freeze {
		return false
	}
	var file, val, want string
	switch c.version {
	case "v2":
		file, val = filepath.Join(c.dirOf("", name), "cgroup.freeze"), "0"
		if on {
			val = "1"
		}
	case "v1":
		d := c.dirOf("freezer", name)
		if d == "" {
			return false
		}
		file, val = filepath.Join(d, "freezer.state"), "THAWED"
		if on {
			val, want = "FROZEN", "FROZEN"
		}
	default:
		return false
	}
	if err := os.WriteFile(file, []byte(val), 0); err != nil {
		return false
	}
	if want != "" {
		for i := 0; i < 100; i++ {
			if b, err := os.ReadFile(file); err != nil || string(b) == want+"\n" {
				break
			}
			<-wallClock.After(time.Millisecond)
		}
	}
	return true
}

// killUser SIGKILLs every process of the Unix user acct until none is left
// or d has passed, and reports whether none is left. While /proc shows
// some, it calls kill(-1, SIGKILL) as that user from a thread of its own
// (the kernel then signals every process of the user in one pass, which no
// fork escapes) and signals what the scan saw. Only for users that are
// not the node's own nor root.
func killUser(acct account, d time.Duration) bool {
	if !acct.set() || acct.UID == 0 || acct.UID == os.Geteuid() {
		return true
	}
	deadline := wallClock.Now().Add(d)
	for {
		pids := userProcs(acct.UID)
		if len(pids) == 0 {
			return true
		}
		if wallClock.Now().After(deadline) {
			return false
		}
		killAsUser(acct)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-wallClock.After(5 * time.Millisecond)
	}
}

// killAsUser runs kill(-1, SIGKILL) on a thread that became acct (raw
// per-thread syscalls); the thread is never unlocked, so it dies with its
// goroutine and the node's other threads stay root.
func killAsUser(acct account) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if becomeUser(acct) != nil {
			return
		}
		_ = unix.Kill(-1, unix.SIGKILL)
	}()
	<-done
}

// userProcs lists the live processes, other than the node, whose real,
// effective or saved uid is uid.
func userProcs(uid int) []int {
	if procFSErr != nil {
		return nil
	}
	all, err := procFS.AllProcs()
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, p := range all {
		if p.PID == self {
			continue // never the node, whatever its main thread's ids say
		}
		st, err := p.NewStatus()
		if err != nil {
			continue
		}
		for _, u := range st.UIDs[:3] {
			if int(u) == uid {
				if s, ok := readProcStat(p.PID); ok && s.State != 'Z' {
					out = append(out, p.PID)
				}
				break
			}
		}
	}
	return out
}

// killPartition stops every process of partition idx: its cgroup's and,
// when it has a user of its own, every process of that user. With neither
// (a node that is not root and has no cgroups), the processes whose
// environment names the partition's directory as HOME are killed: a
// process that changes its own environment escapes that, and the process
// groups are all that is left. It reports whether anything survived.
func (m *Manager) killPartition(idx int) bool {
	ok := m.cg.killAll(partCgroup(idx), killWait)
	if idx >= 0 && idx < len(m.users) {
		ok = killUser(m.users[idx], killWait) && ok
		if !m.users[idx].set() && m.cg.version == "none" {
			home := "HOME=" + m.partDir(idx)
			ok = killMarked(func(kv string) bool { return kv == home }, killWait) && ok
		}
	}
	if !ok {
		m.cfg.Log.Error("partition: processes survive SIGKILL", "partition", idx)
	}
	return !ok
}

// killMarked SIGKILLs every process of the node's own user (not the node)
// with an environment variable for which marked is true, until none is
// left or d has passed, and reports whether none is left.
func killMarked(marked func(kv string) bool, d time.Duration) bool {
	deadline := wallClock.Now().Add(d)
	for {
		pids := markedProcs(marked)
		if len(pids) == 0 {
			return true
		}
		if wallClock.Now().After(deadline) {
			return false
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-wallClock.After(5 * time.Millisecond)
	}
}

// markedProcs lists the live processes of the node's user, other than the
// node, with an environment variable for which marked is true.
func markedProcs(marked func(kv string) bool) []int {
	if procFSErr != nil {
		return nil
	}
	all, err := procFS.AllProcs()
	if err != nil {
		return nil
	}
	self, euid := os.Getpid(), uint64(os.Geteuid())
	var out []int
	for _, p := range all {
		if p.PID == self {
			continue
		}
		st, err := p.NewStatus()
		if err != nil || st.UIDs[1] != euid {
			continue
		}
		env, err := p.Environ()
		if err != nil {
			continue
		}
		for _, kv := range env {
			if marked(kv) {
				if s, ok := readProcStat(p.PID); ok && s.State != 'Z' {
					out = append(out, p.PID)
				}
				break
			}
		}
	}
	return out
}
