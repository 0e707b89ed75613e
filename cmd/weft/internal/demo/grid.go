package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// Errors of the grid of node processes.
var (
	// ErrNodeExited means a node process ended while the demo needed it.
	ErrNodeExited = errors.New("demo: node process exited")
	// ErrCommand means a client command failed or printed unexpected output.
	ErrCommand = errors.New("demo: client command failed")
)

// nodeFlagSet says which optional flags of `weft node` the binary has.
type nodeFlagSet map[string]bool

// node is one node process of the grid.
type node struct {
	index   int
	name    string // "node0"
	dir     string // data dir
	logPath string
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
	waitErr error
	killed  bool

	peerID string
	addrs  []string
	client *api.Client
}

// pid returns the node's process ID.
func (n *node) pid() int { return n.cmd.Process.Pid }

// running reports whether the process has not exited.
func (n *node) running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// grid is the demo's set of node processes under one folder.
type grid struct {
	bin        string
	dir        string
	slice      time.Duration
	partitions int
	portBase   int // first partition port of node0; node i starts at portBase + i*portStride
	flags      nodeFlagSet

	mu    sync.Mutex
	nodes []*node
}

// nodeArgs returns the command line of node i. Every node but node0 (the
// requester) advertises the host label.
func (g *grid) nodeArgs(i int, dataDir string, bootstrap []string) []string {
	args := []string{"node", "--data-dir", dataDir, "--api", "127.0.0.1:0"}
	opt := func(flag string, vals ...string) {
		if !g.flags[flag] {
			return
		}
		for _, v := range vals {
			args = append(args, flag, v)
		}
	}
	opt("--listen", "/ip4/127.0.0.1/tcp/0")
	opt("--preset", "local")
	opt("--slice", g.slice.String())
	opt("--partitions", fmt.Sprint(g.partitions))
	opt("--bootstrap", bootstrap...)
	if i > 0 {
		opt("--label", hostLabelKey+"="+hostLabelValue)
	}
	// All nodes share the loopback interface: give each its own range of
	// partition ports.
	opt("--port-base", fmt.Sprint(g.portBase+i*portStride(g.partitions)))
	return args
}

// start launches node i (data dir g.dir/node<i>, log in node.log there).
func (g *grid) start(i int, bootstrap []string) (*node, error) {
	n := &node{index: i, name: fmt.Sprintf("node%d", i), exited: make(chan struct{})}
	n.dir = filepath.Join(g.dir, n.name)
	// Traversable (not listable) by other users: partitions run as their
	// own Unix users when the node runs as root, and must reach their
	// directories inside the data dir. Secrets in it are 0600 files.
	if err := os.MkdirAll(n.dir, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(n.dir, 0o711); err != nil {
		return nil, err
	}
	n.logPath = filepath.Join(n.dir, "node.log")
	lf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	n.logFile = lf
	n.cmd = exec.Command(g.bin, g.nodeArgs(i, n.dir, bootstrap)...)
	n.cmd.Stdout, n.cmd.Stderr = lf, lf
	n.cmd.Dir = n.dir
	isolate(n.cmd)
	if err := n.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("demo: start %s: %w", n.name, err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		lf.Close()
		close(n.exited)
	}()
	g.mu.Lock()
	g.nodes = append(g.nodes, n)
	g.mu.Unlock()
	return n, nil
}

// live returns the nodes that were not killed by the demo, in index order.
func (g *grid) live() []*node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*node
	for _, n := range g.nodes {
		if !n.killed {
			out = append(out, n)
		}
	}
	return out
}

// all returns every node started, in index order.
func (g *grid) all() []*node {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*node(nil), g.nodes...)
}

// byPeer returns the node whose peer ID is id, or nil.
func (g *grid) byPeer(id string) *node {
	for _, n := range g.all() {
		if n.peerID != "" && n.peerID == id {
			return n
		}
	}
	return nil
}

// status is the part of `weft status --json` (GET /v1/status) the demo reads.
type status struct {
	PeerID  string   `json:"peer_id"`
	Addrs   []string `json:"addrs"`
	Members int      `json:"members"`
	Peers   int      `json:"peers"`
	Grid    string   `json:"grid"`
}

// getStatus reads GET /v1/status through the node's API client.
func (n *node) getStatus(ctx context.Context) (status, error) {
	var st status
	if n.client == nil {
		c, err := api.NewClientFromDataDir(n.dir)
		if err != nil {
			return st, err
		}
		n.client = c
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := n.client.Get(cctx, "/v1/status", &st)
	return st, err
}

// waitStatus polls the node until its API answers GET /v1/status with a
// peer ID and at least one address, and records them.
func (n *node) waitStatus(ctx context.Context) (status, error) {
	var last error
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := n.getStatus(ctx)
		switch {
		case err == nil && st.PeerID != "" && len(st.Addrs) > 0:
			n.peerID, n.addrs = st.PeerID, st.Addrs
			return st, nil
		case err == nil:
			last = fmt.Errorf("GET /v1/status answered without peer_id or addrs: %+v", st)
		case notFound(err):
			return st, fmt.Errorf("%s: GET /v1/status: %w (%w)", n.name, err, ErrNotLanded)
		default:
			last = err
		}
		select {
		case <-n.exited:
			return st, fmt.Errorf("%w: %s (%v); last lines of its log:\n%s", ErrNodeExited, n.name, n.waitErr, tail(n.logPath, 8))
		case <-ctx.Done():
			return st, fmt.Errorf("%s: no usable status before the deadline: %w (last: %v)", n.name, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// kill simulates the machine's death: SIGKILL to the node, its process group
// and every process below it (instances in their own groups too).
func (g *grid) kill(n *node) {
	g.mu.Lock()
	n.killed = true
	g.mu.Unlock()
	pid := n.pid()
	kids := descendants(pid)
	signalGroup(pid, syscall.SIGKILL)
	for _, k := range kids {
		signalGroup(k, syscall.SIGKILL)
	}
	for _, k := range kids {
		reap(k)
	}
}

// close stops every node (SIGTERM, then SIGKILL after grace), then every
// process left below the demo, and removes the grid's folder.
func (g *grid) close(grace time.Duration) error {
	nodes := g.all()
	var below []int
	for _, n := range nodes {
		if n.running() {
			below = append(below, descendants(n.pid())...)
			signalGroup(n.pid(), syscall.SIGTERM)
		}
	}
	deadline := time.After(grace)
	for _, n := range nodes {
		select {
		case <-n.exited:
		case <-deadline:
		}
	}
	for _, n := range nodes {
		if n.running() {
			below = append(below, descendants(n.pid())...)
			signalGroup(n.pid(), syscall.SIGKILL)
			<-n.exited
		}
	}
	// Whatever the nodes left behind (instances in their own process groups)
	// was re-parented to us; stop it too.
	below = append(below, descendants(os.Getpid())...)
	for _, p := range below {
		signalGroup(p, syscall.SIGKILL)
	}
	stop := time.Now().Add(3 * time.Second)
	for _, p := range below {
		for alive(p) && time.Now().Before(stop) {
			reap(p)
			time.Sleep(10 * time.Millisecond) // waiting for the kernel to finish a SIGKILL; no event to wait on
		}
		reap(p)
	}
	var left []string
	for _, p := range below {
		if alive(p) {
			left = append(left, fmt.Sprint(p))
		}
	}
	// As root, each node made Unix users of its own (named after its
	// data dir, which goes now) and an nftables table metering them, which
	// a node killed (the lost host) leaves behind: they go too.
	for _, n := range nodes {
		deleteNodeUsers(n.dir, g.partitions)
		deleteNetTable(n.dir)
	}
	unmountBelow(g.dir) // the disk images killed nodes left mounted
	err := os.RemoveAll(g.dir)
	if err != nil {
		err = os.RemoveAll(g.dir) // a process that just died may have been writing
	}
	if len(left) > 0 {
		err = errors.Join(err, fmt.Errorf("demo: processes still alive after cleanup: %s", strings.Join(left, " ")))
	}
	return err
}

// cli runs `weft --data-dir DIR ARGS... --json` against node n and decodes
// its stdout into out (unless out is nil). A non-zero exit or output that is
// not JSON is an ErrCommand naming the command and its stderr.
func (g *grid) cli(ctx context.Context, n *node, out any, args ...string) error {
	return g.runCLI(ctx, n, out, false, args...)
}

// cliReport is cli for commands that exit non-zero to report a negative
// verdict while still printing their JSON (ledger audit with problems): the
// JSON is decoded and the exit status is not an error.
func (g *grid) cliReport(ctx context.Context, n *node, out any, args ...string) error {
	return g.runCLI(ctx, n, out, true, args...)
}

func (g *grid) runCLI(ctx context.Context, n *node, out any, verdict bool, args ...string) error {
	full := append([]string{"--data-dir", n.dir}, args...)
	full = append(full, "--json")
	cmd := exec.CommandContext(ctx, g.bin, full...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 2 * time.Second
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	isolate(cmd)
	shown := "weft --data-dir " + n.name + " " + strings.Join(args, " ") + " --json"
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", ErrCommand, shown, ctx.Err())
		}
		var ee *exec.ExitError
		if verdict && out != nil && errors.As(err, &ee) && json.Unmarshal(bytes.TrimSpace(so.Bytes()), out) == nil {
			return nil
		}
		if missingFeature(se.String()) {
			return fmt.Errorf("%w: %s: %v: %s (%w)", ErrCommand, shown, err, lastLines(se.String(), 4), ErrNotLanded)
		}
		return fmt.Errorf("%w: %s: %v: %s", ErrCommand, shown, err, lastLines(se.String(), 4))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(&so).Decode(out); err != nil {
		return fmt.Errorf("%w: %s printed no JSON of the expected shape (%v): %.300q", ErrCommand, shown, err, so.String())
	}
	return nil
}

// cliText runs a client command without --json and returns its stdout.
func (g *grid) cliText(ctx context.Context, n *node, args ...string) (string, error) {
	full := append([]string{"--data-dir", n.dir}, args...)
	cmd := exec.CommandContext(ctx, g.bin, full...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 2 * time.Second
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	isolate(cmd)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: weft --data-dir %s %s: %v: %s", ErrCommand, n.name, strings.Join(args, " "), err, lastLines(se.String(), 4))
	}
	return so.String(), nil
}

// missingFeature reports whether a command's stderr says the binary lacks
// the command or flag (a subsystem that has not landed).
func missingFeature(stderr string) bool {
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand flag"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// notFound reports whether err is the API's 404: the route does not exist.
func notFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 405)
}

// probeNodeFlags reads `weft node --help` and reports which of the flags the
// demo passes are there.
func probeNodeFlags(ctx context.Context, bin string) (nodeFlagSet, error) {
	cmd := exec.CommandContext(ctx, bin, "node", "--help")
	var so bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &so
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: weft node --help: %v: %s", ErrCommand, err, lastLines(so.String(), 4))
	}
	help := so.String()
	fs := nodeFlagSet{}
	for _, f := range append(append([]string(nil), demoNodeFlags...), optionalNodeFlags...) {
		fs[f] = strings.Contains(help, f+" ") || strings.Contains(help, f+"=")
	}
	return fs, nil
}

// portStride is the span of ports reserved per node: room for 20 ports per
// partition, at least 100.
func portStride(partitions int) int { return max(100, 20*partitions) }

// optionalNodeFlags are passed when `weft node` has them, and not reported
// when it has not.
var optionalNodeFlags = []string{"--port-base"}

// demoNodeFlags are the flags of `weft node` the demo passes (besides
// --data-dir and --api, which the skeleton has).
var demoNodeFlags = []string{"--listen", "--bootstrap", "--preset", "--label", "--slice", "--partitions"}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return lastLines(string(b), n)
}

// lastLines returns the last n non-empty lines of s, indented.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var keep []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	for i := range keep {
		keep[i] = "    " + keep[i]
	}
	return strings.Join(keep, "\n")
}

// nodeUserPrefix is the prefix of the Unix users a root node with the data
// dir dataDir makes (partition.NodeUserPrefix: "weft-" + 8 hex digits of
// the SHA-256 of the absolute data dir + "-"). The demo drives weft
// processes and does not import the runtime; a test checks the two agree.
func nodeUserPrefix(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "weft-" + hex.EncodeToString(sum[:4]) + "-"
}

// netTable is the nftables table a root node with the data dir dataDir
// meters its partitions' traffic in (partition.NetTable of the absolute
// dir: "weft_" + 12 hex digits of its SHA-256); a test checks the two agree.
func netTable(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "weft_" + hex.EncodeToString(sum[:6])
}

// deleteNetTable deletes the metering table of the node with the data dir
// dataDir (as root, once its processes are gone; absent when the node
// closed cleanly or metered nothing).
func deleteNetTable(dataDir string) {
	if os.Geteuid() != 0 {
		return
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		_ = exec.Command(nft, "delete", "table", "inet", netTable(dataDir)).Run()
	}
}

// deleteNodeUsers deletes the partition and install users of the node
// with the data dir dataDir (as root, once its processes are gone).
func deleteNodeUsers(dataDir string, partitions int) {
	if os.Geteuid() != 0 {
		return
	}
	userdel, err := exec.LookPath("userdel")
	if err != nil {
		return
	}
	prefix := nodeUserPrefix(dataDir)
	names := []string{prefix + "install"}
	for i := 0; i < partitions; i++ {
		names = append(names, prefix+strconv.Itoa(i))
	}
	for _, name := range names {
		if _, err := user.Lookup(name); err == nil {
			_ = exec.Command(userdel, name).Run()
		}
	}
}
