package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/partition"
)

// procLog collects a node process's stdout and stderr (safe for the two
// writers at once).
type procLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *procLog) logText() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// stopGently sends SIGTERM to a node process and waits for it, killing
// its process group if it has not exited within 15 s.
func stopGently(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// mktNode is one `weft node` process of a market test, in its own process
// group so that a kill takes it down like a crash.
type mktNode struct {
	procLog
	name   string
	dir    string
	peerID string
	addr   string
	cmd    *exec.Cmd
	killed bool
}

// mktGrid is a grid of nodes started by one test.
type mktGrid struct {
	t     testing.TB
	bin   string
	nodes []*mktNode
	base  int
}

func newMktGrid(t testing.TB) *mktGrid {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	mktBaseMu.Lock()
	if mktNextBase == 0 || mktNextBase > 31000 { // below the ephemeral range (32768+)
		mktNextBase = 21000 + rand.IntN(25)*200
	}
	base := mktNextBase
	mktNextBase += 200
	mktBaseMu.Unlock()
	return &mktGrid{t: t, bin: bin, base: base}
}

// Each grid of a test process gets its own partition port ranges.
var (
	mktBaseMu   sync.Mutex
	mktNextBase int
)

// start launches a node (bootstrapping from the first one) and waits for
// its API.
func (g *mktGrid) start(name string, args ...string) *mktNode {
	g.t.Helper()
	return g.startIn(name, g.t.TempDir(), len(g.nodes), args...)
}

// restart starts a killed or stopped node again in its data dir (same
// identity, same partition ports), bootstrapping from a live node.
func (g *mktGrid) restart(old *mktNode, args ...string) *mktNode {
	g.t.Helper()
	for i, n := range g.nodes {
		if n == old {
			return g.startIn(old.name+"'", old.dir, i, args...)
		}
	}
	g.t.Fatalf("restart: %s is not a node of this grid", old.name)
	return nil
}

// stop ends n gracefully (SIGTERM: it leaves the grid).
func (g *mktGrid) stop(n *mktNode) {
	n.killed = true
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	_ = n.cmd.Wait()
}

func (g *mktGrid) startIn(name, dir string, slot int, args ...string) *mktNode {
	t := g.t
	t.Helper()
	n := &mktNode{name: name, dir: dir}
	// Partitions run as their own Unix users when the node runs as root:
	// they must be able to traverse the test's temporary directories.
	for d := n.dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	all := []string{"--data-dir", n.dir, "node", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--preset", "local", "--partitions", "4", "--port-base", strconv.Itoa(g.base + 40*slot)}
	for _, b := range g.nodes {
		if !b.killed {
			all = append(all, "--bootstrap", b.addr)
			break
		}
	}
	n.cmd = exec.Command(g.bin, append(all, args...)...)
	n.cmd.Stdout, n.cmd.Stderr = n, n
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A failed test may have met a wedged node: before it is stopped,
		// SIGQUIT makes it print every goroutine's stack, and those of
		// weft's code blocked for a minute or more are shown below.
		before, stuck := n.logText(), ""
		if t.Failed() && !n.killed && quitForStacks(n.cmd) {
			n.killed = true
			stuck = stuckGoroutines(n.logText()[len(before):])
		}
		if !n.killed {
			stopGently(n.cmd)
		}
		killUnder(n.dir)
		if log := n.logText(); strings.Contains(log, "WARNING: DATA RACE") {
			i := strings.Index(log, "WARNING: DATA RACE")
			t.Errorf("node %s reported a data race (binary built with -race):\n%s", n.name, firstN(log[i:], 80))
		}
		if t.Failed() {
			t.Logf("node %s (%s) log:\n%s", n.name, n.peerID, lastN(before, 60))
			if stuck != "" {
				t.Logf("node %s: goroutines of weft blocked for a minute or more:\n%s", n.name, stuck)
			}
		}
	})
	mktPoll(t, 20*time.Second, func() error {
		var st struct {
			PeerID string   `json:"peer_id"`
			Addrs  []string `json:"addrs"`
		}
		if err := json.Unmarshal(g.weftOK(n, "status", "--json"), &st); err != nil {
			return err
		}
		if st.PeerID == "" || len(st.Addrs) == 0 {
			return fmt.Errorf("status without peer ID or address")
		}
		n.peerID, n.addr = st.PeerID, st.Addrs[0]
		return nil
	})
	if slot < len(g.nodes) {
		g.nodes[slot] = n
	} else {
		g.nodes = append(g.nodes, n)
	}
	return n
}

// converge waits until every live node sees every live node alive.
func (g *mktGrid) converge() {
	g.t.Helper()
	want := 0
	for _, n := range g.nodes {
		if !n.killed {
			want++
		}
	}
	mktPoll(g.t, 30*time.Second, func() error {
		for _, n := range g.nodes {
			if n.killed {
				continue
			}
			var st struct {
				Members int `json:"members"`
			}
			if err := json.Unmarshal(g.weftOK(n, "status", "--json"), &st); err != nil {
				return err
			}
			if st.Members != want {
				return fmt.Errorf("%s sees %d members, want %d", n.name, st.Members, want)
			}
		}
		return nil
	})
}

// weft runs a client command against n and returns stdout, stderr and the error.
func (g *mktGrid) weft(n *mktNode, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, append([]string{"--data-dir", n.dir}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return so.String(), se.String(), err
}

// weftOK runs a client command that must succeed... or returns its output
// for polling (an error shows in the caller's decode).
func (g *mktGrid) weftOK(n *mktNode, args ...string) []byte {
	so, se, err := g.weft(n, args...)
	if err != nil {
		return []byte(fmt.Sprintf("weft %s: %v: %s", strings.Join(args, " "), err, se))
	}
	return []byte(so)
}

// mustJSON runs a command that must succeed and decodes its JSON output.
func (g *mktGrid) mustJSON(n *mktNode, v any, args ...string) {
	g.t.Helper()
	so, se, err := g.weft(n, args...)
	if err != nil {
		g.t.Fatalf("weft --data-dir %s %s: %v\nstderr: %s", n.name, strings.Join(args, " "), err, se)
	}
	if err := json.Unmarshal([]byte(so), v); err != nil {
		g.t.Fatalf("weft %s: output is not the expected JSON (%v): %q", strings.Join(args, " "), err, so)
	}
}

// kill SIGKILLs n's process group, like a crash of the machine's node.
func (g *mktGrid) kill(n *mktNode) {
	n.killed = true
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	_ = n.cmd.Wait()
	killUnder(n.dir)
}

func (g *mktGrid) byPeer(id string) *mktNode {
	for _, n := range g.nodes {
		if n.peerID == id {
			return n
		}
	}
	return nil
}

// killUnder SIGKILLs the processes whose working directory is inside dir
// (instance processes a killed node left behind).
// killUnder kills the processes working below dir, and deletes the Unix
// users that a root node whose data dir is dir or dir/data created (each
// node has its own: without this, every test run would add some).
func killUnder(dir string) {
	// After the kills: what the node made on the host outside its data dir
	// (users, cgroups, nftables table, mounted disk images) goes, or every
	// run of the suite would leave some on the machine; the data dir may
	// be dir or dir/data. TestMain retires them once more at the end.
	retired.add(dir)
	defer retireNode(dir)
	defer retireNode(filepath.Join(dir, "data"))
	defer func() { _ = partition.UnmountBelow(dir) }()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// mktPoll calls cond until it returns nil or timeout passes.
func mktPoll(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func firstN(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func lastN(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// mktInstance is the part of an instance object the tests read.
type mktInstance struct {
	Name           string            `json:"name"`
	InstanceID     string            `json:"instance_id"`
	Node           string            `json:"node"`
	State          string            `json:"state"`
	RequestedState string            `json:"requested_state"`
	Connection     map[string]string `json:"connection"`
	Epoch          uint64            `json:"epoch"`
	Reason         string            `json:"reason"`
	// Generation is the latest request's; StatusGeneration the one the
	// host's last status reflects.
	Generation       uint64 `json:"generation"`
	StatusGeneration uint64 `json:"status_generation"`
	// Guardians may re-place it while its requester is offline.
	Guardians []string `json:"guardians"`
}

// repoFile returns a file of the repository (tests run in test/).
func repoFile(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// delNodeUsers deletes the partition and install users of the node whose
// data dir is dataDir (default names; only as root).
func delNodeUsers(dataDir string) { partition.DeleteNodeUsers(dataDir, 16) }

// retireNode removes what a root node on dataDir made on the host.
func retireNode(dataDir string) { _ = partition.RetireNode(dataDir, 16) }

// quitForStacks sends SIGQUIT to a node (the Go runtime prints every
// goroutine's stack to stderr and exits) and waits for it; it reports
// whether the node exited so (otherwise its group is killed).
func quitForStacks(cmd *exec.Cmd) bool {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return false
	}
	if cmd.Process.Signal(syscall.SIGQUIT) != nil {
		return false
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return false
	}
}

// stuckGoroutines picks from a goroutine dump the goroutines of weft's
// own code blocked for a minute or more, and every one acting for the
// partition manager (a stop or a destroy polls: it sleeps, never long
// in one wait); at most 300 lines.
func stuckGoroutines(dump string) string {
	var out []string
	for _, g := range strings.Split(dump, "\n\n") {
		head, _, _ := strings.Cut(strings.TrimSpace(g), "\n")
		if strings.HasPrefix(head, "goroutine ") && strings.Contains(g, "github.com/weftgrid/weft/") &&
			(strings.Contains(head, " minutes]") || strings.Contains(g, "weft/partition.(*Manager).")) {
			out = append(out, strings.TrimSpace(g))
		}
	}
	return firstN(strings.Join(out, "\n\n"), 300)
}
