//go:build unix

package demo

import (
	"errors"
	"os/exec"
	"syscall"
)

// supported reports whether this system can run the demo.
func supported() error { return nil }

// isolate puts cmd in its own process group, so that a Ctrl-C on the
// terminal reaches the demo only (which then stops the nodes in order), and
// asks Linux to stop the child if the demo itself dies.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// signalGroup sends sig to the process group led by pid, and to pid itself.
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
	_ = syscall.Kill(pid, sig)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}
