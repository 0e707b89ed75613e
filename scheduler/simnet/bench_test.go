package simnet_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// benchGrid builds an n-node grid with room for many instances.
func benchGrid(b *testing.B, n, bidderSet int) (*simnet.Network, []*simnet.Node) {
	b.Helper()
	cfg := scheduler.DefaultConfig()
	cfg.BidderSet = bidderSet
	cfg.Tick = 50 * time.Millisecond
	cfg.Auction.Window = 2 * time.Second // answers only lag under overload; the window is then the bound
	cfg.StatusInterval = 30 * time.Second
	net := simnet.New(simnet.Options{Seed: 1})
	nodes, err := net.AddNodes(b.Context(), n, func(i int) simnet.NodeOptions {
		return simnet.NodeOptions{Config: &cfg, Partitions: 1 << 20,
			Capacity: scheduler.Resources{CPUMillis: 1 << 40, MemoryBytes: 1 << 60, DiskBytes: 1 << 60},
			Prices:   &scheduler.PriceList{PerCoreHour: scheduler.Amount(1000 + i)}}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(net.Close)
	return net, nodes
}

func benchSpec(name string) scheduler.RequestSpec {
	return scheduler.RequestSpec{Name: name, RecipeCID: recipeCID, Guardians: -1,
		Resources: scheduler.Resources{CPUMillis: 10, MemoryBytes: 1 << 20}}
}

func place(ctx context.Context, m *scheduler.Market, name string) error {
	if _, err := m.Request(ctx, benchSpec(name)); err != nil {
		return err
	}
	v, err := m.Wait(ctx, name, func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
	if err != nil {
		return err
	}
	if v.State != scheduler.StateStarted {
		return fmt.Errorf("%s: %s %s", name, v.State, v.Reason)
	}
	return nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkPlacementLatency (brief P1): request → instance running (the
// host's status received), one placement at a time; every node asked
// (broadcast) or the 8 nearest. Reports p50/p99.
func BenchmarkPlacementLatency(b *testing.B) {
	for _, k := range []int{0, 8} {
		for _, n := range []int{10, 50, 100} {
			name := fmt.Sprintf("bidders=all/N=%d", n)
			if k > 0 {
				name = fmt.Sprintf("bidders=%d/N=%d", k, n)
			}
			b.Run(name, func(b *testing.B) {
				_, nodes := benchGrid(b, n, k)
				ctx := b.Context()
				var lat []time.Duration
				i := 0
				for b.Loop() {
					start := time.Now()
					if err := place(ctx, nodes[i%n].Market, fmt.Sprintf("lat-%d", i)); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
					i++
				}
				b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// BenchmarkPlacementThroughput (brief P2): concurrent placements from every
// node of a 50-node grid; reports placements/s. bidders=all broadcasts each
// announcement; bidders=8 asks the 8 fitting nodes nearest the instance.
func BenchmarkPlacementThroughput(b *testing.B) {
	for _, k := range []int{0, 8} {
		name := "bidders=all"
		if k > 0 {
			name = fmt.Sprintf("bidders=%d", k)
		}
		b.Run("N=50/"+name, func(b *testing.B) {
			_, nodes := benchGrid(b, 50, k)
			ctx := b.Context()
			var next atomic.Int64
			cpu0 := cpuTime()
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			errs := make(chan error, 1)
			const inflight = 32
			total := int64(b.N)
			for w := range inflight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := nodes[w%len(nodes)].Market
					for {
						i := next.Add(1) - 1
						if i >= total {
							return
						}
						if err := place(ctx, m, fmt.Sprintf("tp-%d", i)); err != nil {
							select {
							case errs <- err:
							default:
							}
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "placements/s")
			// CPU per placement (all goroutines of the process): what the
			// protocol costs, independent of how busy the shared machine is.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/placement")
		})
	}
}

// BenchmarkMessagesPerPlacement (brief P2): messages delivered and
// signature checks per placement as the grid grows, with a bounded bidder
// set (flat) and with broadcast (linear).
func BenchmarkMessagesPerPlacement(b *testing.B) {
	for _, k := range []int{8, 0} {
		for _, n := range []int{10, 50, 100, 200} {
			name := fmt.Sprintf("bidders=%d/N=%d", k, n)
			if k == 0 {
				name = fmt.Sprintf("bidders=all/N=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				net, nodes := benchGrid(b, n, k)
				ctx := b.Context()
				msgs0, sig0 := net.Delivered.Load(), scheduler.Verifications()
				i := 0
				for b.Loop() {
					if err := place(ctx, nodes[i%n].Market, fmt.Sprintf("m-%d", i)); err != nil {
						b.Fatal(err)
					}
					i++
				}
				// Self-addressed messages do not cross the network; count the
				// announcements, bids and statuses that do.
				b.ReportMetric(float64(net.Delivered.Load()-msgs0)/float64(i), "msgs/placement")
				b.ReportMetric(float64(scheduler.Verifications()-sig0)/float64(i), "sigchecks/placement")
			})
		}
	}
}

// BenchmarkFailover (brief P6): host taken off the grid → instance serving
// on another host, once the membership has declared it dead (simnet's
// membership declares at once; grace 0).
func BenchmarkFailover(b *testing.B) {
	net, nodes := benchGrid(b, 50, 8)
	ctx := b.Context()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("fo-%d", i)
		req := nodes[i%10].Market
		if err := place(ctx, req, name); err != nil {
			b.Fatal(err)
		}
		v, _ := req.Instance(name)
		host := net.Node(mustDecodeB(b, v.Node))
		if host.Market == req {
			i++
			continue
		}
		start := time.Now()
		host.Down()
		if _, err := req.Wait(ctx, name, func(x scheduler.InstanceView) bool {
			return x.Epoch > v.Epoch && x.State == scheduler.StateStarted
		}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		host.Up()
		i++
	}
	if len(lat) > 0 {
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	}
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
