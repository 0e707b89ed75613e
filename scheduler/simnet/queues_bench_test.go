package simnet_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// BenchmarkDeliveryWithBlackHoles measures the market messages delivered
// per second to healthy peers while a requester places instances whose
// guardians include black-holed peers (members whose connection died
// without a word: every direct message to them hangs until SendTimeout),
// against a grid without black holes. Real time (not synctest): the
// black holes' sends really wait. The goal is a ratio ≥ 0.9.
func BenchmarkDeliveryWithBlackHoles(b *testing.B) {
	for _, holes := range []int{0, 3} {
		b.Run(fmt.Sprintf("blackholed=%d", holes), func(b *testing.B) {
			cfg := scheduler.DefaultConfig()
			cfg.Tick = 10 * time.Millisecond
			cfg.Auction.EnoughBids = 3 // bidders that never answer do not hold the auction
			net := simnet.New(simnet.Options{Seed: 3})
			nodes, err := net.AddNodes(b.Context(), 10, func(i int) simnet.NodeOptions {
				return simnet.NodeOptions{Config: &cfg, Partitions: 1 << 20,
					Capacity: scheduler.Resources{CPUMillis: 1 << 40, MemoryBytes: 1 << 60, DiskBytes: 1 << 60}}
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(net.Close)
			for _, n := range nodes[len(nodes)-holes:] {
				n.BlackHole(true)
			}
			req := nodes[0].Market
			before := net.Delivered.Load()
			start := time.Now()
			b.ResetTimer()
			for i := range b.N {
				s := benchSpec(fmt.Sprintf("i%d", i))
				s.Guardians = 9 // every other member, the black holes included
				if _, err := req.Request(b.Context(), s); err != nil {
					b.Fatal(err)
				}
				if _, err := req.Wait(b.Context(), s.Name, func(v scheduler.InstanceView) bool { return v.State == scheduler.StateStarted }); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(net.Delivered.Load()-before)/elapsed.Seconds(), "msgs/s")
		})
	}
}
