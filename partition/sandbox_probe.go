package partition

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeSandbox checks, for real, each protection partitions would get on
// this host: a throwaway thread confined like a partition tries to read a
// file of the data dir, bind a port outside its range and signal the node;
// another gets the private /tmp; a throwaway process goes through the
// whole start path and reports its rlimits. What fails is switched off for
// every partition (and said in Reasons), so the status never claims what
// does not hold.
func (m *Manager) probeSandbox() SandboxStatus {
	var st SandboxStatus
	why := func(format string, args ...any) { st.Reasons = append(st.Reasons, fmt.Sprintf(format, args...)) }
	dir, err := os.MkdirTemp("", "weft-sandbox-probe-")
	if err != nil {
		why("sandbox probe: %v", err)
		return st
	}
	defer os.RemoveAll(dir)
	secret := filepath.Join(m.cfg.DataDir, ".sandbox-probe")
	if err := os.WriteFile(secret, []byte("probe\n"), 0o644); err != nil {
		why("sandbox probe: %v", err)
		return st
	}
	defer os.Remove(secret)
	lo, hi := m.portRange(0)
	outside := hi + 1
	if outside > 65535 {
		outside = lo - 1
	}

	probeLandlock(&st, why, dir, secret, lo, hi, outside)

	// Private /tmp, /dev/shm and IPC.
	if os.Geteuid() != 0 {
		why("no private /tmp, /dev/shm or IPC namespace: the node does not run as root (Landlock still denies the shared /tmp and /dev/shm, and SysV IPC and POSIX message queues are refused)")
	} else {
		left, err := os.CreateTemp("/tmp", "weft-sandbox-probe-")
		if err != nil {
			why("no private /tmp: %v", err)
		} else {
			left.Close()
			defer os.Remove(left.Name())
			sb, err := openSandbox(sandboxSpec{Mounts: true})
			if err != nil {
				why("no private /tmp: %v", err)
			} else {
				var seen error
				var fs unix.Statfs_t
				_ = sb.do(func() {
					_, seen = os.Stat(left.Name())
					if err := unix.Statfs("/tmp", &fs); err != nil {
						fs.Type = 0
					}
				})
				sb.close()
				st.PrivateTmp = errors.Is(seen, os.ErrNotExist) && fs.Type == unix.TMPFS_MAGIC
				st.PrivateIPC = st.PrivateTmp
				if !st.PrivateTmp {
					why("private mount namespace: a file of the host's /tmp was still seen (%v)", seen)
				}
			}
		}
	}

	// Rlimits, through the whole start path: the gate sets them in the
	// process itself.
	const probeDisk = 1 << 20
	spec := sandboxSpec{RW: cleanPaths(dir), Mounts: st.PrivateTmp}
	if st.FS {
		spec.ABI = st.LandlockABI
	}
	if out, err := m.probeGate(spec, probeDisk); err != nil {
		why("rlimits: %v", err)
	} else if bad := checkLimits(out, m.cfg.NoFile, probeDisk); bad != "" {
		why("rlimits did not take effect: %s", bad)
	} else {
		st.Rlimits = true
	}
	st.Promises = true
	st.DiskMetered = true
	err = probeDiskImage(dir)
	if err == nil {
		st.DiskQuota = true
		return st
	}
	why("disk: no hard limit (a loop-mounted ext4 image per partition could not be made: %v)", err)
	why("disk: metered (usage measured every %s while an instance has a disk resource, and at the end of a batch; an instance over it fails with %q; files are capped at that size by RLIMIT_FSIZE), not a hard quota",
		min(m.cfg.DiskInterval, diskQuotaInterval), errDiskQuota.Error())
	return st
}

// probeLandlock confines a throwaway thread with Landlock as a partition
// whose directory is dir and ports lo..hi, and checks from it that secret
// (in the data dir) cannot be opened, port outside cannot be bound (lo
// can), and a process outside the domain cannot be signalled.
func probeLandlock(st *SandboxStatus, why func(string, ...any), dir, secret string, lo, hi, outside int) {
	abi := landlockABI()
	if abi == 0 {
		why("Landlock unavailable (kernel without it, or not enabled in the lsm= boot list): processes can read whatever their user can, and bind any port")
		return
	}
	// A process outside the domain, to signal (the node's own threads may
	// always signal each other).
	other := exec.Command("/bin/sh", "-c", "read -r _")
	otherIn, _ := other.StdinPipe()
	otherErr := other.Start()
	if otherErr == nil {
		defer func() {
			otherIn.Close()
			_ = other.Process.Kill()
			_ = other.Wait()
		}()
	}
	sb, err := openSandbox(sandboxSpec{RW: cleanPaths(dir), ABI: abi, PortLo: lo, PortHi: hi})
	if err != nil {
		why("Landlock ABI %d could not be enforced: %v", abi, err)
		return
	}
	var fsErr, ctlErr, bindOut, bindIn error
	sigErr := errors.New("no process to signal")
	_ = sb.do(func() {
		fsErr = tryOpen(secret, unix.O_RDONLY)
		ctlErr = tryOpen(filepath.Join(dir, "rw"), unix.O_WRONLY|unix.O_CREAT)
		bindOut = tryBind(outside, 0)
		if mptcp := tryBind(outside, unix.IPPROTO_MPTCP); mptcp == nil {
			bindOut = fmt.Errorf("an MPTCP socket bound port %d", outside)
		}
		bindIn = tryBind(lo, 0)
		if otherErr == nil {
			sigErr = unix.Kill(other.Process.Pid, 0)
		}
	})
	sb.close()
	switch {
	case ctlErr != nil:
		why("Landlock: a confined process could not write its own partition (%v)", ctlErr)
		return
	case !errors.Is(fsErr, unix.EACCES):
		why("Landlock: a confined process could read the node's data dir (%v)", fsErr)
		return
	}
	st.LandlockABI, st.FS = abi, true
	if abi < 4 {
		why("Landlock ABI %d < 4: processes may bind any port", abi)
	} else if st.BindPorts = errors.Is(bindOut, unix.EACCES) && (bindIn == nil || errors.Is(bindIn, unix.EADDRINUSE)); !st.BindPorts {
		why("Landlock: bind outside the port range gave %v, inside %v", bindOut, bindIn)
	}
	if abi < 6 {
		why("Landlock ABI %d < 6: signals and abstract Unix sockets are not scoped (partition users still keep partitions apart when the node runs as root)", abi)
	} else if st.ScopedSignals = errors.Is(sigErr, unix.EPERM); !st.ScopedSignals {
		why("Landlock: a confined process could signal one outside its partition (%v)", sigErr)
	}
}

// probeGate runs `cat /proc/self/limits` behind the gate in a sandbox like
// spec and returns what it printed.
func (m *Manager) probeGate(spec sandboxSpec, disk int64) (string, error) {
	sb, err := openSandbox(spec)
	if err != nil {
		return "", err
	}
	defer sb.close()
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	gate, open, err := os.Pipe()
	if err != nil {
		w.Close()
		return "", err
	}
	defer open.Close()
	cat, err := exec.LookPath("cat")
	if err != nil {
		w.Close()
		gate.Close()
		return "", err
	}
	cmd := exec.Command("/bin/sh", "-c", gateScript(m.cfg.NoFile, disk), "weft-gate", cat, "/proc/self/limits")
	cmd.Dir = spec.RW[0]
	cmd.Stdout, cmd.Stderr = w, w
	cmd.ExtraFiles = []*os.File{gate}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = sb.start(cmd)
	w.Close()
	gate.Close()
	if err != nil {
		return "", err
	}
	_, _ = open.Write([]byte{'\n'})
	open.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, rerr := r.Read(buf)
		b.Write(buf[:n])
		if rerr != nil || b.Len() > 64<<10 {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}

// checkLimits says what in /proc/self/limits output differs from what
// the gate sets ("" when all took effect, soft and hard).
func checkLimits(out string, nofile uint64, disk int64) string {
	want := map[string]string{
		"Max open files":     strconv.FormatUint(nofile, 10),
		"Max core file size": "0",
		"Max file size":      strconv.FormatInt(disk/512*512, 10),
	}
	var bad []string
	for name, v := range want {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if !strings.HasPrefix(l, name+" ") {
				continue
			}
			f := strings.Fields(strings.TrimPrefix(l, name))
			found = len(f) >= 2 && f[0] == v && f[1] == v
		}
		if !found {
			bad = append(bad, name+" is not "+v)
		}
	}
	return strings.Join(bad, ", ")
}

func tryOpen(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func tryBind(port, proto int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
}

// start starts cmd from the sandbox's thread, so that it inherits the
// sandbox (a nil sandbox starts it as is).
func (sb *sandbox) start(cmd *exec.Cmd) error {
	if sb == nil {
		return cmd.Start()
	}
	var err error
	if e := sb.do(func() { err = cmd.Start() }); e != nil {
		return e
	}
	return err
}
