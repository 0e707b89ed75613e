package test

import (
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
// requester sees it (membership detection with the local preset,
// re-auction, install, start, promise, status).
func BenchmarkMarketFailover(b *testing.B) {
	web := repoFile(b, "recipes/examples/webserver.toml")
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		g := newMktGrid(b)
		req := g.start("requester")
		g.start("host1", "--label", "role=host")
		g.start("host2", "--label", "role=host")
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
		mktPoll(b, 60*time.Second, func() error {
			g.mustJSON(req, &in, "instance", "show", "web", "--json")
			if in.Node == host.peerID || in.State != "started" {
				return fmt.Errorf("on %s, %s", in.Node, in.State)
			}
			return fetchPage(in.Connection["url"], "hello")
		})
		took = append(took, time.Since(t0))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "kill-to-serving-p50-ms")
}
