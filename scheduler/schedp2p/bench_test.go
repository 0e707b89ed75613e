package schedp2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftgrid/weft/p2p/p2ptest"
)

// BenchmarkMarketDirectMessage measures one direct market message (1 KiB)
// between two real libp2p nodes on loopback, from Send to delivery on the
// receiver's Inbound channel, with an in-run baseline: the same bytes over
// a raw libp2p stream (open, write, close, read to EOF) without framing,
// bounds or the inbound queue. ratio = transport / raw.
func BenchmarkMarketDirectMessage(b *testing.B) {
	c := p2ptest.NewCluster(b, 2)
	c.WaitConverged(b, 20*time.Second)
	a, z := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()
	ta, err := New(ctx, a, p2ptest.Logger())
	if err != nil {
		b.Fatal(err)
	}
	defer ta.Close()
	tz, err := New(ctx, z, p2ptest.Logger())
	if err != nil {
		b.Fatal(err)
	}
	defer tz.Close()
	msg := make([]byte, 1024)

	rawProto := a.ProtocolPrefix() + "/bench/raw/1"
	got := make(chan struct{}, 1)
	z.Host().SetStreamHandler(rawProto, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		s.Close()
		got <- struct{}{}
	})
	raw := func() {
		s, err := a.Host().NewStream(ctx, z.ID(), rawProto)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(msg); err != nil {
			b.Fatal(err)
		}
		s.Close()
		<-got
	}
	market := func() {
		if err := ta.Send(ctx, z.ID(), msg); err != nil {
			b.Fatal(err)
		}
		<-tz.Inbound()
	}
	raw()
	market()
	var rawT, mktT time.Duration
	for b.Loop() {
		t0 := time.Now()
		raw()
		rawT += time.Since(t0)
		t0 = time.Now()
		market()
		mktT += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(float64(mktT.Microseconds())/n, "market-µs/msg")
	b.ReportMetric(float64(rawT.Microseconds())/n, "raw-µs/msg")
	b.ReportMetric(float64(mktT)/float64(rawT), "ratio")
}
