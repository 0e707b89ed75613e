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
// socket) with ENOSYS. Everything else is allowed.

// seccompArch is the audit architecture of this build's system calls, 0
// where the filter is not built (the sandbox then reports bind_ports only
// if MPTCP is off on the host).
var seccompArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]

// installSeccomp installs the filter on the calling thread (no_new_privs
// must be set).
func installSeccomp() error {
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
	// struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (the low
	// half of args[2] at 32 on these little-endian architectures).
	prog := []unix.SockFilter{
		{Code: ldW, K: 4},                                                     // 0: arch
		{Code: jeq, K: seccompArch, Jt: 0, Jf: 6},                             // 1: other arch → allow
		{Code: ldW, K: 0},                                                     // 2: nr
		{Code: jge, K: 0x40000000, Jt: 5, Jf: 0},                              // 3: x32 system calls → ENOSYS
		{Code: jeq, K: unix.SYS_IO_URING_SETUP, Jt: 5, Jf: 0},                 // 4: → ENOSYS
		{Code: jeq, K: unix.SYS_SOCKET, Jt: 0, Jf: 2},                         // 5: not socket → allow
		{Code: ldW, K: 32},                                                    // 6: protocol
		{Code: jeq, K: unix.IPPROTO_MPTCP, Jt: 1, Jf: 0},                      // 7: MPTCP → EPROTONOSUPPORT
		{Code: ret, K: allow},                                                 // 8
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPROTONOSUPPORT)}, // 9
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},          // 10
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// prctl, unlike seccomp(2) with TSYNC, filters the calling thread only.
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("partition: sandbox: seccomp: %w", err)
	}
	runtime.KeepAlive(prog)
	return nil
}
