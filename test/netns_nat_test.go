//go:build linux

package test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two home machines, each behind its own router that masquerades its
// connections and forwards no port, bootstrapped to a public node: with
// --reachability public on the public node and --reachability private on
// the homes (nothing else: no relay address, no port), the homes reserve
// relay slots with the public node, see each other alive, a request from
// one home pinned to the other starts there, and `weft instance connect`
// from the first home reaches its web server, which is not reachable from
// outside its home.
func TestNetnsTwoHomesBehindNAT(t *testing.T) {
	lab := newNetLab(t, 1)
	pub := lab.hosts[0]
	home1, home2 := lab.natHost(1), lab.natHost(2)
	lab.start(pub, "--reachability", "public")
	lab.start(home1, "--reachability", "private", "--bootstrap", pub.addr)
	lab.start(home2, "--reachability", "private", "--bootstrap", pub.addr)
	type peerRow struct {
		PeerID string `json:"peer_id"`
		State  string `json:"state"`
		Reach  string `json:"reach"`
	}
	sees := func(h, other *labHost) error {
		var rows []peerRow
		if err := lab.json(h, &rows, "peers"); err != nil {
			return err
		}
		for _, r := range rows {
			if r.PeerID == other.peerID {
				if r.State != "alive" {
					return fmt.Errorf("%s sees %s %s", h.name, other.name, r.State)
				}
				return nil
			}
		}
		return fmt.Errorf("%s does not know %s", h.name, other.name)
	}
	mktPoll(t, 60*time.Second, func() error {
		for _, pair := range [][2]*labHost{{home1, home2}, {home2, home1}, {pub, home1}, {pub, home2}} {
			if err := sees(pair[0], pair[1]); err != nil {
				return err
			}
		}
		return nil
	})
	web := repoFile(t, "recipes/examples/webserver.toml")
	var in mktInstance
	if err := lab.json(home1, &in, "request", "web", "--recipe", web, "--param", "message=from the other home",
		"--sla", "node="+home2.peerID, "--wait"); err != nil {
		t.Fatal(err)
	}
	if in.State != "started" || in.Node != home2.peerID {
		t.Fatalf("web: %+v; want started on the second home %s", in, home2.peerID)
	}
	// Its URL names the second home's LAN address: out of reach elsewhere.
	if _, err := getFrom(home1.name, in.Connection["url"]); err == nil {
		t.Fatalf("%s is reachable from the first home without a tunnel", in.Connection["url"])
	}
	cmd := exec.Command("ip", "netns", "exec", home1.name, lab.bin, "--data-dir", home1.dir,
		"instance", "connect", "web", "--local", "127.0.0.1:18080", "--json")
	var se strings.Builder
	cmd.Stderr = &se
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	var listening struct {
		Local string `json:"local"`
	}
	if err := json.NewDecoder(out).Decode(&listening); err != nil || listening.Local != "127.0.0.1:18080" {
		t.Fatalf("weft instance connect: %+v, %v (stderr %q)", listening, err, se.String())
	}
	mktPoll(t, 60*time.Second, func() error {
		body, err := getFrom(home1.name, "http://127.0.0.1:18080/")
		if err == nil && !strings.Contains(body, "from the other home") {
			err = fmt.Errorf("page without the message: %q", body)
		}
		return err
	})
}
