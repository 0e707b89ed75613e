package partition

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// spawnSpec is one process weft starts for a recipe: an instance's process
// or an install step. Every such process is started by spawn.
type spawnSpec struct {
	// sb is the sandbox thread it is forked from (nil: the node's own
	// thread, as acct).
	sb   *sandbox
	acct account
	// cgroup is the node's cgroup it runs in ("" none).
	cgroup string
	// nofile and disk are its rlimits (open files; largest file, 0 none).
	nofile uint64
	disk   int64
	dir    string
	env    []string
	out    *os.File // stdout and stderr
	// path is the command (resolved), args its arguments.
	path string
	args []string
}

// spawn starts s behind a gate (gateScript): forked from its sandbox's
// thread (so confined from its first instruction), in a process group of
// its own, then moved into its cgroup; only then does the gate open, the
// process set its rlimits and exec the command, so nothing it starts can
// escape them. The caller waits for the returned command.
func (m *Manager) spawn(s spawnSpec) (*exec.Cmd, error) {
	gate, open, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer open.Close()
	cmd := exec.Command("/bin/sh", append([]string{"-c", gateScript(s.nofile, s.disk), "weft-gate", s.path}, s.args...)...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.ExtraFiles = []*os.File{gate} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.sb == nil && s.acct.set() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(s.acct.UID), Gid: uint32(s.acct.GID), Groups: []uint32{}}
	}
	err = s.sb.start(cmd)
	gate.Close()
	if err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	if s.cgroup != "" && m.cg.version != "none" {
		if err := m.cg.addTo(s.cgroup, pid); err != nil {
			m.cfg.Log.Warn("partition: cgroup add", "pid", pid, "cgroup", s.cgroup, "err", err)
		}
	}
	if _, err := open.Write([]byte{'\n'}); err != nil { // the gate opens: the command runs
		killGroup(pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("partition: open the gate: %w", err)
	}
	return cmd, nil
}
