package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// A sandbox is one OS thread that carries a partition's confinement:
// a Landlock domain (files, TCP bind ports, signal and abstract-socket
// scoping), as root also a private mount namespace (its own /tmp and
// /dev/shm) and IPC namespace, and the partition's user. Every process
// weft starts for the partition is forked from that thread, so it is
// confined from its first instruction and all of them share one domain
// (they may signal each other, nothing outside). Checks that open
// connections for the partition (promises) dial from it too.
//
// Landlock, namespaces and credentials are per thread in Linux: the
// thread is locked to its goroutine and dies with it (a goroutine that
// exits while locked takes its thread with it), so the restrictions
// never reach another goroutine of the node. The Go runtime starts new
// threads from a clean template thread, not from a locked one.
type sandbox struct {
	reqs chan func()
	quit chan struct{}
	done chan struct{}
	once sync.Once
	got  SandboxStatus
}

// sandboxSpec says what one sandbox confines.
type sandboxSpec struct {
	// RW are the trees the processes may read and write (the partition
	// directory).
	RW []string
	// RO are trees and files they may read and execute.
	RO []string
	// Mounts: give the sandbox private mount and IPC namespaces (root),
	// with fresh tmpfs on /tmp and /dev/shm (what RW and RO name below
	// them is bound back in).
	Mounts bool
	// TmpSize caps each of those tmpfs in bytes (0: the kernel's default;
	// their pages are charged to the partition's memory either way).
	TmpSize int64
	// PortLo..PortHi (inclusive) are the TCP ports it may bind; none when
	// PortLo is 0.
	PortLo, PortHi int
	// As is the account the processes run as (zero: the node's own).
	As account
	// ABI is the Landlock ABI to use (0: no Landlock).
	ABI int
}

// errSandboxClosed: the sandbox's thread is gone (the run ended).
var errSandboxClosed = errors.New("partition: sandbox closed")

// openSandbox starts a sandbox thread confined by spec.
func openSandbox(spec sandboxSpec) (*sandbox, error) {
	sb := &sandbox{reqs: make(chan func()), quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		// Never unlocked: the thread is tainted and must die with this
		// goroutine.
		runtime.LockOSThread()
		defer close(sb.done)
		got, err := enterSandbox(spec)
		sb.got = got
		ready <- err
		if err != nil {
			return
		}
		for {
			select {
			case f := <-sb.reqs:
				f()
			case <-sb.quit:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		<-sb.done
		return nil, err
	}
	return sb, nil
}

// do runs f on the sandbox's thread (with its confinement and user).
func (sb *sandbox) do(f func()) error {
	ran := make(chan struct{})
	select {
	case sb.reqs <- func() { defer close(ran); f() }:
	case <-sb.done:
		return errSandboxClosed
	}
	<-ran
	return nil
}

// close ends the sandbox's thread. Processes it started keep their
// confinement (and their namespaces stay alive while they do).
func (sb *sandbox) close() {
	if sb == nil {
		return
	}
	sb.once.Do(func() { close(sb.quit) })
	<-sb.done
}

// enterSandbox confines the calling (locked) thread per spec and says
// what took effect. The Landlock rules are taken first (on the objects
// the paths name before anything is mounted over them), then the
// namespaces (mounting needs root and no Landlock domain yet), then the
// domain is enforced, then the thread becomes the partition's user.
func enterSandbox(spec sandboxSpec) (SandboxStatus, error) {
	var got SandboxStatus
	rfd := -1
	if spec.ABI > 0 {
		fd, err := landlockRuleset(spec)
		if err != nil {
			return got, err
		}
		defer unix.Close(fd)
		rfd = fd
	}
	if spec.Mounts {
		if err := privateMounts(spec, rfd); err != nil {
			return got, err
		}
		got.PrivateTmp, got.PrivateIPC = true, true
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return got, fmt.Errorf("partition: sandbox: no_new_privs: %w", err)
	}
	if spec.ABI >= 4 { // with or without ports to bind (an install has none)
		if err := installSeccomp(!spec.Mounts); err != nil {
			return got, err
		}
	}
	if rfd >= 0 {
		if err := ll.LandlockRestrictSelf(rfd, 0); err != nil {
			return got, fmt.Errorf("partition: sandbox: landlock: %w", err)
		}
		got.LandlockABI = spec.ABI
		got.FS = true
		got.BindPorts = spec.ABI >= 4 && spec.PortLo > 0
		got.ScopedSignals = spec.ABI >= 6
	}
	if spec.As.set() {
		if err := becomeUser(spec.As); err != nil {
			return got, err
		}
	}
	return got, nil
}

// privateMounts moves the thread into new mount and IPC namespaces and
// mounts fresh tmpfs on /tmp and /dev/shm (nosuid, nodev): a tenant sees
// nothing another left in them, and what it leaves goes with its
// processes (as do its SysV and POSIX IPC objects, which live in the IPC
// namespace). The paths of spec.RW and spec.RO below /tmp or /dev/shm
// are bound back at the same place. With a Landlock ruleset (rfd ≥ 0),
// the new /tmp and /dev/shm are made writable in it.
func privateMounts(spec sandboxSpec, rfd int) error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWIPC); err != nil {
		return fmt.Errorf("partition: sandbox: unshare: %w", err)
	}
	// Nothing mounted here propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("partition: sandbox: mount propagation: %w", err)
	}
	type keep struct {
		path string
		fd   int
		dir  bool
	}
	var keeps []keep
	targets := []string{"/tmp"}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		targets = append(targets, "/dev/shm")
	}
	// Held open before the tmpfs hide them (and opened in the new
	// namespace: a bind source must be in it).
	for _, p := range append(slices.Clone(spec.RW), spec.RO...) {
		for _, t := range targets {
			if p == t || strings.HasPrefix(p, t+"/") {
				fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("partition: sandbox: %s: %w", p, err)
				}
				defer unix.Close(fd)
				var st unix.Stat_t
				if err := unix.Fstat(fd, &st); err != nil {
					return fmt.Errorf("partition: sandbox: %s: %w", p, err)
				}
				keeps = append(keeps, keep{p, fd, st.Mode&unix.S_IFMT == unix.S_IFDIR})
			}
		}
	}
	opts := "mode=1777"
	if spec.TmpSize > 0 {
		opts += ",size=" + strconv.FormatInt(spec.TmpSize, 10)
	}
	for _, t := range targets {
		if err := unix.Mount("tmpfs", t, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("partition: sandbox: mount %s: %w", t, err)
		}
		if rfd >= 0 {
			if err := llAddPath(rfd, t, llHandledFS(spec.ABI)); err != nil {
				return err
			}
		}
	}
	// The new tmpfs are empty and no tenant process runs yet: making the
	// mount points there follows nothing a tenant made.
	for _, k := range keeps {
		mp := k.path
		if k.dir {
			if err := os.MkdirAll(mp, 0o755); err != nil {
				return fmt.Errorf("partition: sandbox: %w", err)
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(mp), 0o755); err != nil {
				return fmt.Errorf("partition: sandbox: %w", err)
			}
			f, err := os.OpenFile(mp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o555)
			if err != nil {
				return fmt.Errorf("partition: sandbox: %w", err)
			}
			f.Close()
		}
		if err := unix.Mount("/proc/thread-self/fd/"+strconv.Itoa(k.fd), mp, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("partition: sandbox: bind %s: %w", mp, err)
		}
	}
	return nil
}

// becomeUser switches the thread (only it: raw syscalls, not the
// all-threads wrappers) to acct with no supplementary groups.
func becomeUser(acct account) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("partition: sandbox: setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(acct.GID), uintptr(acct.GID), uintptr(acct.GID)); e != 0 {
		return fmt.Errorf("partition: sandbox: setresgid: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(acct.UID), uintptr(acct.UID), uintptr(acct.UID)); e != 0 {
		return fmt.Errorf("partition: sandbox: setresuid: %w", e)
	}
	return nil
}

// Landlock access rights per ABI (see the kernel's landlock.h).
const (
	llFSv1 = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSReadDir |
		ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeChar | ll.AccessFSMakeDir |
		ll.AccessFSMakeReg | ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeBlock | ll.AccessFSMakeSym
	llRO       = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir
	llFileOnly = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev
)

// llHandledFS is every filesystem right ABI abi knows: all are denied
// unless a rule grants them.
func llHandledFS(abi int) uint64 {
	h := uint64(llFSv1)
	if abi >= 2 {
		h |= ll.AccessFSRefer
	}
	if abi >= 3 {
		h |= ll.AccessFSTruncate
	}
	if abi >= 5 {
		h |= ll.AccessFSIoctlDev
	}
	return h
}

// sandboxDevices are the device files ordinary programs open; they may
// be read and written (nothing else of /dev is reachable).
var sandboxDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// sandboxSystemRO are the system trees processes may read and execute.
// The node's data dir, run dir and other partitions are not among them,
// whatever their modes.
var sandboxSystemRO = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
	"/opt", "/proc", "/sys/fs/cgroup", "/sys/devices/system/cpu", "/run/systemd/resolve", "/dev/pts"}

// landlockRuleset builds spec's Landlock ruleset (not yet enforced).
func landlockRuleset(spec sandboxSpec) (int, error) {
	handled := llHandledFS(spec.ABI)
	attr := ll.RulesetAttr{HandledAccessFS: handled}
	if spec.ABI >= 4 {
		attr.HandledAccessNet = ll.AccessNetBindTCP // connecting stays allowed
	}
	if spec.ABI >= 6 {
		attr.Scoped = ll.ScopeSignal | ll.ScopeAbstractUnixSocket
	}
	fd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return -1, fmt.Errorf("partition: sandbox: landlock ruleset: %w", err)
	}
	if err := landlockRules(fd, spec, handled); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func landlockRules(fd int, spec sandboxSpec, handled uint64) error {
	for _, p := range spec.RW {
		if err := llAddPath(fd, p, handled); err != nil {
			return err
		}
	}
	for _, p := range spec.RO {
		if err := llAddPath(fd, p, llRO&handled); err != nil {
			return err
		}
	}
	for _, p := range sandboxSystemRO {
		if err := llAddPath(fd, p, llRO&handled); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	for _, p := range sandboxDevices {
		err := llAddPath(fd, p, (ll.AccessFSReadFile|ll.AccessFSWriteFile|ll.AccessFSTruncate|ll.AccessFSIoctlDev)&handled)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENXIO) {
			return err
		}
	}
	if spec.ABI >= 4 && spec.PortLo > 0 {
		for p := spec.PortLo; p <= spec.PortHi; p++ {
			if err := ll.LandlockAddNetPortRule(fd, &ll.NetPortAttr{AllowedAccess: ll.AccessNetBindTCP, Port: uint64(p)}, 0); err != nil {
				return fmt.Errorf("partition: sandbox: landlock port %d: %w", p, err)
			}
		}
	}
	return nil
}

// llAddPath allows access beneath path (a file gets only the rights
// that apply to files).
func llAddPath(rfd int, path string, access uint64) error {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("partition: sandbox: %s: %w", path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return fmt.Errorf("partition: sandbox: %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= llFileOnly
	}
	if err := ll.LandlockAddPathBeneathRule(rfd, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: pfd}, 0); err != nil {
		return fmt.Errorf("partition: sandbox: landlock rule %s: %w", path, err)
	}
	return nil
}

// landlockABI is the kernel's Landlock ABI version, 0 when unavailable.
func landlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// cleanPaths returns the absolute, existing forms of paths (symlinks in
// them resolved: a Landlock rule is on the object found).
func cleanPaths(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// runSandboxSpec is the sandbox of a run in partition idx of software
// soft, shaped by what the probe at New saw work.
func (m *Manager) runSandboxSpec(idx int, soft string, acct account, disk int64) sandboxSpec {
	spec := sandboxSpec{As: acct, Mounts: m.sandbox.PrivateTmp, TmpSize: disk,
		RW: cleanPaths(m.partDir(idx)), RO: cleanPaths(soft, m.weft)}
	if m.sandbox.FS {
		spec.ABI = m.sandbox.LandlockABI
		if m.sandbox.BindPorts {
			spec.PortLo, spec.PortHi = m.portRange(idx)
		}
	}
	return spec
}

// openRunSandbox gives rs its sandbox; it closes when the run ends.
func (m *Manager) openRunSandbox(rs *runState, soft string) error {
	if m.noSandbox {
		return nil
	}
	sb, err := openSandbox(m.runSandboxSpec(rs.idx, soft, rs.acct, rs.disk))
	if err != nil {
		return err
	}
	rs.sb = sb
	go func() {
		<-rs.ctx.Done()
		sb.close()
	}()
	return nil
}

// tmpBytes is what the sandbox's private /tmp and /dev/shm hold (0
// without them), read from its own thread, inside its mount namespace.
func (sb *sandbox) tmpBytes() int64 {
	if sb == nil || !sb.got.PrivateTmp {
		return 0
	}
	var n int64
	_ = sb.do(func() {
		for _, p := range []string{"/tmp", "/dev/shm"} {
			var st unix.Statfs_t
			if unix.Statfs(p, &st) == nil && st.Type == unix.TMPFS_MAGIC {
				n += int64(st.Blocks-st.Bfree) * st.Bsize
			}
		}
	})
	return n
}
