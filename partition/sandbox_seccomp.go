package partition

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock's TCP rules apply to TCP sockets only: an MPTCP socket (which Go
// programs open by default for listeners) binds any port unchecked, and
// io_uring can create and bind sockets without the system calls a filter
// sees. So a sandbox also installs a small seccomp filter on its thread
// (inherited by its processes): socket(…, IPPROTO_MPTCP) fails with
// EPROTONOSUPPORT (programs fall back to TCP, which Landlock checks), and
// io_uring_setup and x32 system calls (which the filter would not see as
// socket) with ENOSYS; without an IPC namespace, SysV IPC and POSIX
// message queues fail too (seccompNoIPC). Everything else is allowed.

// seccompArch is the audit architecture of this build's system calls, 0
// where the filter is not built (the sandbox then reports bind_ports only
// if MPTCP is off on the host).
var seccompArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]

// seccompNoIPC are the IPC system calls refused (ENOSYS) when a sandbox
// has no IPC namespace of its own (the node is not root): SysV objects and
// POSIX message queues are reached by key or name, not by a path Landlock
// sees, so one tenant could read what an earlier one left.
var seccompNoIPC = []uint32{unix.SYS_SHMGET, unix.SYS_SEMGET, unix.SYS_MSGGET, unix.SYS_MQ_OPEN}

// installSeccomp installs the filter on the calling thread (no_new_privs
// must be set); noIPC also refuses seccompNoIPC.
func installSeccomp(noIPC bool) error {
	if seccompArch == 0 {
		return fmt.Errorf("partition: sandbox: no seccomp filter for %s", runtime.GOARCH)
	}
	const (
		ldW   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		allow = unix.SECCOMP_RET_ALLOW
	)
	enosys := []uint32{unix.SYS_IO_URING_SETUP}
	if noIPC {
		enosys = append(enosys, seccompNoIPC...)
	}
	// The program ends with three returns: ALLOW, EPROTONOSUPPORT, ENOSYS;
	// jumps are to them, counted from the next instruction.
	var prog []unix.SockFilter
	n := 4 + len(enosys) + 3 // instructions before the returns
	allowAt, eprotoAt, enosysAt := n, n+1, n+2
	to := func(target int) uint8 { return uint8(target - len(prog) - 1) }
	// struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (the low
	// half of args[2] at 32 on these little-endian architectures).
	prog = append(prog, unix.SockFilter{Code: ldW, K: 4}) // arch
	prog = append(prog, unix.SockFilter{Code: jeq, K: seccompArch, Jf: to(allowAt)})
	prog = append(prog, unix.SockFilter{Code: ldW, K: 0})                            // nr
	prog = append(prog, unix.SockFilter{Code: jge, K: 0x40000000, Jt: to(enosysAt)}) // x32 calls
	for _, nr := range enosys {
		prog = append(prog, unix.SockFilter{Code: jeq, K: nr, Jt: to(enosysAt)})
	}
	prog = append(prog, unix.SockFilter{Code: jeq, K: unix.SYS_SOCKET, Jf: to(allowAt)})
	prog = append(prog, unix.SockFilter{Code: ldW, K: 32}) // protocol
	prog = append(prog, unix.SockFilter{Code: jeq, K: unix.IPPROTO_MPTCP, Jt: to(eprotoAt), Jf: to(allowAt)})
	prog = append(prog,
		unix.SockFilter{Code: ret, K: allow},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPROTONOSUPPORT)},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	if len(prog) != enosysAt+1 {
		return fmt.Errorf("partition: sandbox: seccomp program of %d instructions, want %d", len(prog), enosysAt+1)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// prctl, unlike seccomp(2) with TSYNC, filters the calling thread only.
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("partition: sandbox: seccomp: %w", err)
	}
	runtime.KeepAlive(prog)
	return nil
}
