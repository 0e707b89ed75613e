package test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startConnect starts `weft instance connect` on n and returns the local
// address it listens on; the process is interrupted at the end of the test.
func startConnect(t *testing.T, g *mktGrid, n *mktNode, args ...string) string {
	t.Helper()
	cmd := exec.Command(g.bin, append([]string{"--data-dir", n.dir, "instance", "connect", "--json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var se strings.Builder
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("weft instance connect after SIGINT: %v (stderr %q)", err, se.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("weft instance connect did not stop on SIGINT")
		}
	})
	type listening struct {
		Local string `json:"local"`
	}
	got := make(chan listening, 1)
	go func() {
		var v listening
		_ = json.NewDecoder(bufio.NewReader(out)).Decode(&v)
		got <- v
	}()
	select {
	case v := <-got:
		if v.Local == "" {
			t.Fatalf("weft instance connect printed no address (stderr %q)", se.String())
		}
		return v.Local
	case <-time.After(30 * time.Second):
		t.Fatalf("weft instance connect printed nothing (stderr %q)", se.String())
	}
	return ""
}

// TestInstanceConnect: the requester of a web server placed on another
// node opens it through `weft instance connect` (a libp2p stream to the
// host), several times over one running forwarder; a node that is neither
// the requester nor a guardian cannot.
func TestInstanceConnect(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester")
	host := g.start("host", "--label", "role=host")
	other := g.start("other")
	g.converge()
	if _, _, err := g.weft(req, "tool", "httpd", "--help"); err != nil {
		t.Skip("weft tool httpd (run by the webserver example) is not in this binary")
	}
	web := repoFile(t, "recipes/examples/webserver.toml")
	var in mktInstance
	g.mustJSON(req, &in, "request", "web", "--recipe", web, "--param", "message=through the tunnel",
		"--sla", "node="+host.peerID, "--sla", "guardians=0", "--wait", "--json")
	if in.State != "started" {
		t.Fatalf("web: %+v", in)
	}
	local := startConnect(t, g, req, "web", "--port", "http")
	for range 3 {
		mktPoll(t, 20*time.Second, func() error {
			return fetchPage("http://"+local+"/", "through the tunnel")
		})
	}
	// A stranger asks the API of its own node for the instance by ID: its
	// node does not track it, and the host would refuse it anyway.
	so, se, err := g.weft(other, "instance", "connect", in.InstanceID)
	if err == nil {
		t.Fatalf("a stranger connected: %s", so)
	}
	if !strings.Contains(se, "not found") && !strings.Contains(se, "instance list") {
		t.Fatalf("stranger's error: %q", se)
	}
}
