package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// weftBin returns the weft binary under test ($WEFT_BIN, set by make test).
func p2pWeftBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	return bin
}

// cliNode is one 'weft node' process.
type cliNode struct {
	dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startCLINode(t *testing.T, bin string, args ...string) *cliNode {
	t.Helper()
	dir := t.TempDir()
	n := &cliNode{dir: dir, log: &bytes.Buffer{}}
	all := append([]string{"--data-dir", dir, "node", "--api", "127.0.0.1:0",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--preset", "local", "--log-format", "json"}, args...)
	n.cmd = exec.Command(bin, all...)
	n.cmd.Stderr = n.log
	n.cmd.Stdout = n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
		}
		killUnder(dir)
		if t.Failed() {
			t.Logf("node %s log:\n%s", dir, n.log.String())
		}
	})
	p2pWait(t, 20*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "api.json"))
		return err
	})
	return n
}

func (n *cliNode) run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"--data-dir", n.dir}, args...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("weft %v: %v\n%s", args, err, stderr)
	}
	return out
}

type statusOut struct {
	PeerID  string   `json:"peer_id"`
	Addrs   []string `json:"addrs"`
	Members int      `json:"members"`
	Peers   int      `json:"peers"`
	Grid    string   `json:"grid"`
}

type peerOut struct {
	PeerID string   `json:"peer_id"`
	State  string   `json:"state"`
	Addrs  []string `json:"addrs"`
}

func (n *cliNode) status(t *testing.T, bin string) statusOut {
	t.Helper()
	var s statusOut
	if err := json.Unmarshal(n.run(t, bin, "status", "--json"), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (n *cliNode) peers(t *testing.T, bin string) []peerOut {
	t.Helper()
	var p []peerOut
	if err := json.Unmarshal(n.run(t, bin, "peers", "--json"), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func p2pWait(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestP2PCLIThreeNodes(t *testing.T) {
	bin := p2pWeftBin(t)
	a := startCLINode(t, bin)
	sa := a.status(t, bin)
	if sa.Grid != "public" || sa.PeerID == "" || len(sa.Addrs) == 0 {
		t.Fatalf("status of the first node: %+v", sa)
	}
	for _, ad := range sa.Addrs {
		if !strings.HasSuffix(ad, "/p2p/"+sa.PeerID) {
			t.Fatalf("address %q does not end in /p2p/<peer_id>", ad)
		}
	}
	b := startCLINode(t, bin, "--bootstrap", sa.Addrs[0])
	// The third node takes its bootstrap address and labels from a config file.
	cfg := filepath.Join(t.TempDir(), "weft.toml")
	toml := fmt.Sprintf("[node]\nbootstrap = [%q]\nmdns = \"off\"\nlabels = { region = \"test-eu\" }\n", b.status(t, bin).Addrs[0])
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCLINode(t, bin, "--config", cfg)
	nodes := []*cliNode{a, b, c}
	p2pWait(t, 30*time.Second, func() error {
		for _, n := range nodes {
			s := n.status(t, bin)
			if s.Members != 3 || s.Peers < 1 {
				return fmt.Errorf("%s: members %d peers %d", s.PeerID, s.Members, s.Peers)
			}
		}
		return nil
	})
	// The labels from c's config file reach a through c's signed advert.
	p2pWait(t, 15*time.Second, func() error {
		out := string(a.run(t, bin, "peers", "--json"))
		if !strings.Contains(out, `"region": "test-eu"`) {
			return fmt.Errorf("label not seen by a:\n%s", out)
		}
		return nil
	})
	// Prometheus metrics need the token.
	metrics := p2pGetMetrics(t, a.dir, true)
	if !strings.Contains(metrics, "weft_p2p_members{state=\"alive\"} 3") || !strings.Contains(metrics, "libp2p_") {
		t.Fatalf("metrics lack the membership gauge or libp2p's metrics:\n%.2000s", metrics)
	}
	if p2pGetMetrics(t, a.dir, false) != "401" {
		t.Fatal("/metrics answered without the token")
	}
	ps := a.peers(t, bin)
	if len(ps) != 3 {
		t.Fatalf("peers --json lists %d, want 3: %+v", len(ps), ps)
	}
	for _, p := range ps {
		if p.State != "alive" || p.PeerID == "" || len(p.Addrs) == 0 {
			t.Fatalf("peer %+v", p)
		}
	}
	// SIGTERM leaves gracefully: the others see c dead at once.
	cid := c.status(t, bin).PeerID
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("node exited with %v after SIGTERM", err)
	}
	p2pWait(t, 15*time.Second, func() error {
		for _, p := range a.peers(t, bin) {
			if p.PeerID == cid && p.State != "dead" {
				return fmt.Errorf("the stopped node is %s", p.State)
			}
		}
		if m := a.status(t, bin).Members; m != 2 {
			return fmt.Errorf("members %d, want 2", m)
		}
		return nil
	})
	// Human output is a table.
	if out := string(a.run(t, bin, "peers")); !strings.Contains(out, "STATE") || !strings.Contains(out, "(self)") {
		t.Fatalf("peers table:\n%s", out)
	}
}

func TestP2PCLIPrivateGrid(t *testing.T) {
	bin := p2pWeftBin(t)
	fdir := t.TempDir()
	gfile := filepath.Join(t.TempDir(), "lab.grid")
	founder := &cliNode{dir: fdir}
	founder.run(t, bin, "grid", "init", "--name", "lab", "--out", gfile)
	// Start the founder's node in its existing data dir.
	f := startCLINodeIn(t, bin, fdir, "--grid", gfile)
	fs := f.status(t, bin)
	if fs.Grid != "lab" {
		t.Fatalf("founder status grid %q", fs.Grid)
	}
	mdir := t.TempDir()
	member := &cliNode{dir: mdir}
	var idOut struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.Unmarshal(member.run(t, bin, "grid", "id", "--json"), &idOut); err != nil {
		t.Fatal(err)
	}
	f.run(t, bin, "grid", "admit", idOut.PeerID)
	m := startCLINodeIn(t, bin, mdir, "--grid", gfile, "--bootstrap", fs.Addrs[0])
	p2pWait(t, 30*time.Second, func() error {
		if s := m.status(t, bin); s.Members != 2 || s.Grid != "lab" {
			return fmt.Errorf("member: %+v", s)
		}
		return nil
	})
	// A node without the grid file cannot join through the founder.
	out := startCLINode(t, bin, "--bootstrap", fs.Addrs[0])
	// Its bootstrap attempt finished before it wrote api.json.
	for range 3 {
		if s := out.status(t, bin); s.Members != 1 || s.Peers != 0 {
			t.Fatalf("outsider joined the private grid: %+v", s)
		}
		if s := f.status(t, bin); s.Members != 2 {
			t.Fatalf("founder sees %d members, want 2", s.Members)
		}
	}
}

func startCLINodeIn(t *testing.T, bin, dir string, args ...string) *cliNode {
	t.Helper()
	n := &cliNode{dir: dir, log: &bytes.Buffer{}}
	all := append([]string{"--data-dir", dir, "node", "--api", "127.0.0.1:0",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--preset", "local"}, args...)
	n.cmd = exec.Command(bin, all...)
	n.cmd.Stderr = n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
		}
		killUnder(dir)
		if t.Failed() {
			t.Logf("node %s log:\n%s", dir, n.log.String())
		}
	})
	p2pWait(t, 20*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "api.json"))
		return err
	})
	return n
}

// p2pGetMetrics fetches /metrics from the node in dir, with or without its
// token; without, it returns the status code.
func p2pGetMetrics(t *testing.T, dir string, withToken bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "api.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ep struct{ Addr, Token string }
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+ep.Addr+"/metrics", nil)
	if withToken {
		req.Header.Set("Authorization", "Bearer "+ep.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !withToken {
		return strconv.Itoa(resp.StatusCode)
	}
	return string(body)
}
