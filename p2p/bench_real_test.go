package p2p_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

func lan(c *p2p.Config) { c.Preset = p2p.PresetLAN }

// BenchmarkRealConvergence: 10 real nodes (libp2p on loopback, LAN preset)
// started alone, then all join the first at once; reports the time until
// every node counts 10 members.
func BenchmarkRealConvergence(b *testing.B) {
	const n = 10
	var xs []float64
	for range b.N {
		nodes := make([]*p2p.Node, n)
		for i := range n {
			nodes[i] = p2ptest.Start(b, lan)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, nd := range nodes[1:] {
			wg.Go(func() { _, _ = nd.Join(nodes[0].AddrInfo()) })
		}
		wg.Wait()
		c := &p2ptest.Cluster{Nodes: nodes}
		c.WaitConverged(b, time.Minute)
		xs = append(xs, float64(time.Since(start).Milliseconds()))
		closeAll(nodes)
	}
	b.ReportMetric(median(xs), "converge-ms")
}

func closeAll(nodes []*p2p.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.Abort() })
	}
	wg.Wait()
}

// BenchmarkRealFailureDetection: 10 real nodes, LAN preset; one crashes
// (stops without leaving); reports the time until every survivor has
// declared it dead, with memberlist on libp2p streams and on memberlist's
// own UDP/TCP transport.
func BenchmarkRealFailureDetection(b *testing.B) {
	for _, tr := range []p2p.MemberTransport{p2p.TransportLibp2p, p2p.TransportNet} {
		b.Run("transport="+tr.String(), func(b *testing.B) {
			var xs []float64
			for range b.N {
				xs = append(xs, float64(detectOnce(b, 10, tr).Milliseconds()))
			}
			b.ReportMetric(median(xs), "detect-ms")
		})
	}
}

func detectOnce(b *testing.B, n int, tr p2p.MemberTransport) time.Duration {
	b.Helper()
	setTr := func(c *p2p.Config) { c.Transport = tr }
	seed := p2ptest.Start(b, lan, setTr)
	nodes := []*p2p.Node{seed}
	for i := 1; i < n; i++ {
		o := []p2ptest.Option{lan, setTr, p2ptest.Bootstrap(seed)}
		if tr == p2p.TransportNet {
			o = append(o, func(c *p2p.Config) { c.MemberlistJoin = []string{seed.MemberlistAddr()} })
		}
		nodes = append(nodes, p2ptest.Start(b, o...))
	}
	defer closeAll(nodes[:n-1])
	c := &p2ptest.Cluster{Nodes: nodes}
	c.WaitConverged(b, time.Minute)
	victim := nodes[n-1]
	var (
		mu   sync.Mutex
		last time.Time
		seen = map[peer.ID]bool{}
	)
	var cancels []func()
	for _, nd := range nodes[:n-1] {
		ch, cancel := nd.SubscribeMembers()
		cancels = append(cancels, cancel)
		go func() {
			for ev := range ch {
				if ev.Member.ID == victim.ID() && ev.Type == p2p.EventDead {
					mu.Lock()
					if !seen[nd.ID()] {
						seen[nd.ID()] = true
						if ev.At.After(last) {
							last = ev.At
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	start := time.Now()
	victim.Abort()
	p2ptest.WaitFor(b, time.Minute, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != n-1 {
			return fmt.Errorf("%d of %d survivors declared the victim dead", len(seen), n-1)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	return last.Sub(start)
}

// BenchmarkGossip10: 10 real nodes on one topic; one node publishes 2000
// messages of 256 bytes as fast as it can; reports messages per second
// delivered to all 9 subscribers (validation included).
func BenchmarkGossip10(b *testing.B) {
	const n, msgs = 10, 2000
	c := p2ptest.NewCluster(b, n)
	c.WaitConverged(b, time.Minute)
	accept := func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
		return pubsub.ValidationAccept
	}
	topics := make([]*pubsub.Topic, n)
	var got sync.WaitGroup
	for i, nd := range c.Nodes {
		t, err := nd.JoinTopic("bench", accept, 4096)
		if err != nil {
			b.Fatal(err)
		}
		topics[i] = t
	}
	var xs, loss, perCPU []float64
	for range b.N {
		var subs []*pubsub.Subscription
		for _, t := range topics[1:] {
			s, err := t.Subscribe(pubsub.WithBufferSize(msgs))
			if err != nil {
				b.Fatal(err)
			}
			subs = append(subs, s)
		}
		p2ptest.WaitFor(b, time.Minute, func() error {
			if len(topics[0].ListPeers()) < n-1 {
				return fmt.Errorf("publisher sees %d topic peers", len(topics[0].ListPeers()))
			}
			return nil
		})
		var (
			mu       sync.Mutex
			lastRecv time.Time
			counts   = make([]int, len(subs))
		)
		ctx, cancel := context.WithCancel(context.Background())
		for i, s := range subs {
			got.Go(func() {
				for counts[i] < msgs {
					if _, err := s.Next(ctx); err != nil {
						return
					}
					mu.Lock()
					counts[i]++
					lastRecv = time.Now()
					mu.Unlock()
				}
			})
		}
		start := time.Now()
		cpu0 := cpuTime()
		mu.Lock()
		lastRecv = start
		mu.Unlock()
		for k := range msgs {
			payload := make([]byte, 256) // pubsub keeps the slice: never reuse it
			payload[0], payload[1] = byte(k), byte(k>>8)
			if err := topics[0].Publish(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
		// Wait until every subscriber has everything or nothing arrives for 2 s.
		p2ptest.WaitFor(b, 2*time.Minute, func() error {
			mu.Lock()
			defer mu.Unlock()
			if slices.Min(counts) == msgs || time.Since(lastRecv) > 2*time.Second {
				return nil
			}
			return fmt.Errorf("delivered %v", counts)
		})
		cpuUsed := cpuTime() - cpu0
		cancel()
		got.Wait()
		for _, s := range subs {
			s.Cancel()
		}
		mu.Lock()
		el := lastRecv.Sub(start)
		delivered := 0
		for _, c := range counts {
			delivered += c
		}
		mu.Unlock()
		loss = append(loss, 100*(1-float64(delivered)/float64(msgs*len(subs))))
		msgs := float64(delivered) / float64(len(subs))
		xs = append(xs, msgs/el.Seconds())
		perCPU = append(perCPU, msgs/cpuUsed.Seconds())
	}
	b.ReportMetric(median(xs), "msgs/s")
	b.ReportMetric(median(loss), "loss-%")
	b.ReportMetric(median(perCPU), "msgs/cpu-s")
}

// BenchmarkIdleRSS starts one 'weft node' process ($WEFT_BIN), lets it idle
// for 5 s and reports its resident set size.
func BenchmarkIdleRSS(b *testing.B) {
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		b.Skip("WEFT_BIN is not set (make bench sets it)")
	}
	var xs []float64
	for range b.N {
		dir := b.TempDir()
		cmd := exec.Command(bin, "--data-dir", dir, "node", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--preset", "lan", "--mdns", "off")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		p2ptest.WaitFor(b, 30*time.Second, func() error {
			_, err := os.Stat(filepath.Join(dir, "api.json"))
			return err
		})
		time.Sleep(5 * time.Second) // idle period being measured
		rss, err := vmRSS(cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
		xs = append(xs, float64(rss)/(1<<20))
	}
	b.ReportMetric(median(xs), "rss-MiB")
}

func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
