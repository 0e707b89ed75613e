package test

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkMarketPlacement measures what a user waits for on a three-node
// grid of real `weft node` processes over libp2p on loopback: `weft request
// NAME --recipe FILE --wait` from the command's start until the web server
// example is started and its promise passes (auction, award, accept,
// install, start, status). The in-run baseline is `weft instance list`, the
// cost of one CLI round trip to the node, so the market's share is the
// difference. Reports p50 and p99 in ms.
func BenchmarkMarketPlacement(b *testing.B) {
	g := newMktGrid(b)
	req := g.start("requester")
	g.start("host1", "--label", "role=host")
	g.start("host2", "--label", "role=host")
	g.converge()
	web := repoFile(b, "recipes/examples/webserver.toml")
	if _, _, err := g.weft(req, "tool", "httpd", "--help"); err != nil {
		b.Skip("weft tool httpd is not in this binary")
	}
	var place, base []time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		g.weftOK(req, "instance", "list", "--json")
		base = append(base, time.Since(t0))
		name := fmt.Sprintf("bench-%d", i)
		t0 = time.Now()
		var in mktInstance
		g.mustJSON(req, &in, "request", name, "--recipe", web, "--sla", "label.role=host", "--wait", "--json")
		place = append(place, time.Since(t0))
		if in.State != "started" {
			b.Fatalf("%s: %+v", name, in)
		}
		g.mustJSON(req, &in, "request", name, "--recipe", web, "--state", "destroyed", "--wait", "--json")
	}
	p := func(ds []time.Duration, q float64) float64 {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(place, 0.5), "p50-ms")
	b.ReportMetric(p(place, 0.99), "p99-ms")
	b.ReportMetric(p(base, 0.5), "cli-baseline-p50-ms")
}

// BenchmarkMarketFailover measures the time from SIGKILL of the web
// server's host to the instance serving again on another node, as its
// requester sees it (membership detection, re-auction, install, start,
// promise, status), on a fresh grid of three real `weft node` processes
// per run: with the local preset (what the tests use) and with the LAN
// preset (brief P6: ≤ 10 s, ≤ 3 s after death is declared). It reports
// the p50 of kill to serving, of kill to the requester declaring the host
// dead (`weft peers`), and of that declaration to serving. mDNS is off so
// that other nodes on the machine stay out of the grid.
func BenchmarkMarketFailover(b *testing.B) {
	for _, preset := range []string{"local", "lan"} {
		b.Run("preset="+preset, func(b *testing.B) { benchFailover(b, preset) })
	}
}

func benchFailover(b *testing.B, preset string) {
	web := repoFile(b, "recipes/examples/webserver.toml")
	args := []string{"--preset", preset, "--mdns", "off"}
	var took, dead, after []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		g := newMktGrid(b)
		req := g.start("requester", args...)
		g.start("host1", append([]string{"--label", "role=host"}, args...)...)
		g.start("host2", append([]string{"--label", "role=host"}, args...)...)
		g.converge()
		if _, _, err := g.weft(req, "tool", "httpd", "--help"); err != nil {
			b.Skip("weft tool httpd is not in this binary")
		}
		var in mktInstance
		g.mustJSON(req, &in, "request", "web", "--recipe", web, "--sla", "label.role=host", "--wait", "--json")
		host := g.byPeer(in.Node)
		b.StartTimer()
		t0 := time.Now()
		g.kill(host)
		var declared time.Time
		mktPoll(b, 60*time.Second, func() error {
			if declared.IsZero() {
				var peers []struct {
					PeerID string `json:"peer_id"`
					State  string `json:"state"`
				}
				if err := json.Unmarshal(g.weftOK(req, "peers", "--json"), &peers); err == nil {
					for _, p := range peers {
						if p.PeerID == host.peerID && p.State == "dead" {
							declared = time.Now()
						}
					}
				}
			}
			g.mustJSON(req, &in, "instance", "show", "web", "--json")
			if in.Node == host.peerID || in.State != "started" {
				return fmt.Errorf("on %s, %s", in.Node, in.State)
			}
			return fetchPage(in.Connection["url"], "hello")
		})
		served := time.Now()
		took = append(took, served.Sub(t0))
		if declared.IsZero() { // re-placed before the poll saw the verdict
			declared = served
		}
		dead = append(dead, declared.Sub(t0))
		after = append(after, served.Sub(declared))
	}
	p50 := func(ds []time.Duration) float64 {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[len(s)/2].Milliseconds())
	}
	b.ReportMetric(p50(took), "kill-to-serving-p50-ms")
	b.ReportMetric(p50(dead), "kill-to-declared-dead-p50-ms")
	b.ReportMetric(p50(after), "declared-to-serving-p50-ms")
}
