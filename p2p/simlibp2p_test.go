package p2p_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"

	"github.com/weftgrid/weft/p2p"
)

// simulateLibp2p runs memberlist on p2p.StreamTransport over n simulated
// libp2p hosts (go-libp2p's x/simlibp2p: QUIC over a simulated network with
// latency and bandwidth), the same transport the node uses. Like simulate,
// it measures convergence after all join at once and the time for every
// survivor to declare a crashed host dead. Call it inside a synctest bubble.
func simulateLibp2p(n int, preset p2p.Preset, latency time.Duration) (simResult, error) {
	link := simnet.NodeBiDiLinkSettings{
		Downlink: simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
		Uplink:   simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
	}
	nw, meta, err := simlibp2p.SimpleLibp2pNetwork([]simlibp2p.NodeLinkSettingsAndCount{{LinkSettings: link, Count: n}},
		simnet.StaticLatency(latency), simlibp2p.NetworkSettings{})
	if err != nil {
		return simResult{}, err
	}
	nw.Start()
	hosts := meta.Nodes
	mls := make([]*memberlist.Memberlist, n)
	trs := make([]*p2p.StreamTransport, n)
	evs := make([]*simDead, n)
	defer func() {
		for i := range n {
			if mls[i] != nil {
				mls[i].Shutdown()
			}
			hosts[i].Close()
		}
		nw.Close()
		time.Sleep(time.Minute)
	}()
	for _, h := range hosts {
		for _, o := range hosts {
			if o.ID() != h.ID() {
				h.Peerstore().AddAddrs(o.ID(), o.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, h := range hosts {
		k := h.Peerstore().PrivKey(h.ID())
		md, err := p2p.EncodeMeta(k, p2p.Meta{Seq: 1, Advert: p2p.Advert{CPUMillis: 2000, FreePartitions: 4}, Addrs: h.Addrs()})
		if err != nil {
			return simResult{}, err
		}
		c := preset.MemberlistConfig()
		c.Name = h.ID().String()
		c.UDPBufferSize = p2p.StreamPacketSize
		trs[i] = p2p.NewStreamTransport(h, "/weft/sim", c.TCPTimeout, quiet)
		c.Transport = trs[i]
		c.Delegate = simMeta{md}
		evs[i] = &simDead{seen: map[string]time.Time{}}
		c.Events = evs[i]
		c.Logger = log.New(io.Discard, "", 0)
		if mls[i], err = memberlist.Create(c); err != nil {
			return simResult{}, err
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() {
			for {
				if _, err := mls[i].Join([]string{trs[i].JoinAddr(hosts[0].ID())}); err == nil {
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	wg.Wait()
	for {
		all := true
		for _, ml := range mls {
			if ml.NumMembers() != n {
				all = false
				break
			}
		}
		if all {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return simResult{}, fmt.Errorf("no convergence of %d nodes", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := simResult{converge: time.Since(start)}
	victim := hosts[n-1].ID().String()
	mls[n-1].Shutdown()
	mls[n-1] = nil
	hosts[n-1].Close()
	down := time.Now()
	var last time.Time
	for {
		missing := 0
		for i := range n - 1 {
			evs[i].mu.Lock()
			at, ok := evs[i].seen[victim]
			evs[i].mu.Unlock()
			if !ok {
				missing++
			} else if at.After(last) {
				last = at
			}
		}
		if missing == 0 {
			break
		}
		if time.Since(down) > 10*time.Minute {
			return simResult{}, fmt.Errorf("%d survivors never declared the victim dead", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.detect = last.Sub(down)
	for _, e := range evs {
		res.badAdverts += e.bad
	}
	return res, nil
}

// BenchmarkSimLibp2pMembership is BenchmarkSimMembership with memberlist
// on libp2p streams between simulated libp2p hosts (x/simlibp2p, QUIC,
// 1 ms one-way latency, 100 Mbit/s links), in virtual time.
func BenchmarkSimLibp2pMembership(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var conv, det []float64
			for range b.N {
				inBubble(b, func(t *testing.T) {
					res, err := simulateLibp2p(n, p2p.PresetLAN, time.Millisecond)
					if err != nil {
						t.Fatal(err)
					}
					if res.badAdverts != 0 {
						t.Fatalf("%d adverts failed to verify", res.badAdverts)
					}
					conv = append(conv, float64(res.converge.Milliseconds()))
					det = append(det, float64(res.detect.Milliseconds()))
				})
			}
			b.ReportMetric(median(conv), "converge-ms")
			b.ReportMetric(median(det), "detect-ms")
		})
	}
}
