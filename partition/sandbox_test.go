package partition

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// On this host the probe sees each protection the kernel offers take
// effect; the status says so (and why not, for what it lacks).
func TestSandboxProbe(t *testing.T) {
	m := newTestManager(t, nil)
	st := m.Sandbox()
	t.Logf("sandbox: %+v", st)
	abi := landlockABI()
	if st.LandlockABI != abi || st.FS != (abi > 0) || st.BindPorts != (abi >= 4) || st.ScopedSignals != (abi >= 6) {
		t.Fatalf("Landlock ABI %d, status %+v", abi, st)
	}
	if !st.Rlimits {
		t.Fatalf("rlimits not in force: %v", st.Reasons)
	}
	if st.PrivateTmp != (os.Geteuid() == 0) {
		t.Fatalf("private /tmp %v as uid %d: %v", st.PrivateTmp, os.Geteuid(), st.Reasons)
	}
}

// helperTry OP ARG…: tries each "op:arg" and prints "op:arg ok" or
// "op:arg denied: ERR" per line. Ops: read PATH, write PATH, bind PORT,
// mptcp PORT (bind with an MPTCP socket), signal PID.
func helperTry(args []string) {
	for _, a := range args {
		op, arg, _ := strings.Cut(a, ":")
		var err error
		switch op {
		case "read":
			_, err = os.ReadFile(arg)
		case "write":
			err = os.WriteFile(arg, []byte("x"), 0o600)
		case "bind":
			var ln net.Listener
			if ln, err = net.Listen("tcp", "127.0.0.1:"+arg); err == nil {
				ln.Close()
			}
		case "mptcp":
			port, _ := strconv.Atoi(arg)
			var fd int
			if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP); err == nil {
				err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
				unix.Close(fd)
			}
		case "signal":
			pid, _ := strconv.Atoi(arg)
			err = syscall.Kill(pid, 0)
		default:
			err = errors.New("unknown op")
		}
		if err != nil {
			fmt.Printf("%s denied: %v\n", a, err)
		} else {
			fmt.Printf("%s ok\n", a)
		}
	}
	os.Exit(0)
}

// A process of a partition reads and writes its own directory and binds
// its own ports, and nothing else: not a file of the node's data dir (even
// one anyone may read), not a port of another partition (not even with an
// MPTCP socket, which Landlock's TCP rules do not see), not a signal to a
// process outside its partition (the node here).
func TestSandboxConfinesProcesses(t *testing.T) {
	m := newTestManager(t, nil)
	sb := m.Sandbox()
	if !sb.FS || !sb.BindPorts || !sb.ScopedSignals {
		t.Skipf("Landlock ABI %d here: %v", sb.LandlockABI, sb.Reasons)
	}
	secret := filepath.Join(m.cfg.DataDir, "world-readable")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	lo, hi := m.portRange(1)
	rc := mustParse(fmt.Sprintf(`
name = "try"
version = "1"
[types.default]
batch = true
ports = ["a"]
[[types.default.processes]]
name = "main"
command = %q
args = ["read:%s", "write:{{.Partition.Dir}}/mine", "read:{{.Partition.Dir}}/mine", "bind:{{.Ports.a}}",
  "bind:%d", "mptcp:%d", "signal:%d", "read:/etc/passwd"]
env = { WEFT_PARTITION_HELPER = "try" }
`, os.Args[0], secret, hi+1, lo, os.Getpid()))
	if err := m.Apply(InstanceSpec{ID: "try", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "try", PhaseCompleted)
	if st.Partition == 1 {
		t.Fatalf("the job runs in partition 1, whose ports it was to try from outside")
	}
	b, err := os.ReadFile(filepath.Join(m.partDir(st.Partition), "log", "main.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{"read:" + secret + " denied", "/mine ok", "bind:" + strconv.Itoa(st.Ports["a"]) + " ok",
		"bind:" + strconv.Itoa(hi+1) + " denied", "mptcp:" + strconv.Itoa(lo) + " denied",
		"signal:" + strconv.Itoa(os.Getpid()) + " denied", "read:/etc/passwd ok"} {
		if !strings.Contains(log, want) {
			t.Errorf("want %q in the process's log:\n%s", want, log)
		}
	}
}

// Promises run in the partition's sandbox, not as the node: as root, the
// socket of a network promise belongs to the partition's user, and a
// command promise does not run as root.
func TestPromisesRunAsThePartition(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partition users need the node to run as root; not root here")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd on this host")
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711) // t.TempDir's parents are 0700
	}
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, 6)
	cfg.Users = true
	m := startManager(t, cfg)
	defer m.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	owners := make(chan int, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// The HTTP check's socket (open until it has the response; the
			// TCP check closes at once, and a closed socket is listed as
			// root's), as /proc/net/tcp lists it, with its uid.
			buf := make([]byte, 3)
			if n, _ := c.Read(buf); n == 3 && string(buf) == "GET" {
				owners <- tcpOwner(c.RemoteAddr().(*net.TCPAddr).Port, ln.Addr().(*net.TCPAddr).Port)
				fmt.Fprint(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			c.Close()
		}
	}()
	rc := mustParse(fmt.Sprintf(`
name = "promises"
version = "1"
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sleep"
args = ["1000"]
[[types.default.promises]]
name = "tcp"
kind = "tcp"
target = "%[1]s"
when = "test"
[[types.default.promises]]
name = "http"
kind = "http"
target = "http://%[1]s/"
when = "test"
[[types.default.promises]]
name = "cmd"
kind = "command"
command = "test $(id -u) != 0"
when = "test"
`, ln.Addr()))
	if err := m.Apply(InstanceSpec{ID: "p", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "p", PhaseRunning)
	if got, want := <-owners, m.users[st.Partition].UID; got != want {
		t.Errorf("the HTTP promise's socket belongs to uid %d, want the partition's %d", got, want)
	}
}

// tcpOwner is the uid of the local TCP socket with port local connected to
// port remote on 127.0.0.1 (-1 when not found).
func tcpOwner(local, remote int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		lp := strings.SplitN(f[1], ":", 2)
		rp := strings.SplitN(f[2], ":", 2)
		if len(lp) != 2 || len(rp) != 2 {
			continue
		}
		l, _ := strconv.ParseInt(lp[1], 16, 32)
		r, _ := strconv.ParseInt(rp[1], 16, 32)
		if int(l) == local && int(r) == remote {
			uid, _ := strconv.Atoi(f[7])
			return uid
		}
	}
	return -1
}

// A service that writes past its disk resource in many files (each under
// RLIMIT_FSIZE) fails with "disk quota exceeded" at the next measurement
// and is not restarted.
func TestServiceOverDiskFails(t *testing.T) {
	m := newTestManager(t, nil)
	rc := mustParse(`
name = "hog"
version = "1"
[resources]
disk = "1MiB"
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "i=0; while [ $i -lt 16 ]; do i=$((i+1)); head -c 131072 /dev/zero > f$i; done; exec sleep 1000"]
`)
	if err := m.Apply(InstanceSpec{ID: "hog", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "hog", PhaseFailed)
	if !strings.Contains(st.Error, "disk quota exceeded") {
		t.Fatalf("a service writing 2 MiB with disk = 1MiB failed with %q", st.Error)
	}
}
