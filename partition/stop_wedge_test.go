package partition

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// apiBound is how long one Manager call may take in the wedge tests
// before the test fails with every goroutine's stack: a bound far above
// any legitimate wait (a stop's grace, a kill round), not a timing check.
const apiBound = 60 * time.Second

// within runs f and reports whether it returned within apiBound; when it
// did not, the test fails with a dump of every goroutine (f is left
// running: it is wedged).
func within(t testing.TB, what string, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(apiBound)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		buf := make([]byte, 8<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%s did not return within %s: wedged; every goroutine:\n%s", what, apiBound, buf[:n])
		return false
	}
}

// The manager answers (status reads, usage, applies) while instances are
// stopped, restarted and destroyed under it: a stop that races its run's
// promise checks (dialled from the sandbox thread), its supervisors'
// launches, the metering (cgroup, nft counters, the sandbox's /tmp) and
// subscribers never leaves the manager's lock held or a call hanging.
func TestManagerAnswersWhileStopping(t *testing.T) {
	m := newTestManager(t, nil)
	iters := 30
	if testing.Short() {
		iters = 4
	}
	ids := []string{"w0", "w1"}
	stop := make(chan struct{})
	var wedged atomic.Bool
	var wg sync.WaitGroup
	hammer := func(what string, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !within(t, what, f) {
					wedged.Store(true)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	hammer("Partitions", func() { _ = m.Partitions() })
	hammer("List", func() { _ = m.List() })
	hammer("Free", func() { _ = m.Free() })
	for _, id := range ids {
		hammer("Get", func() { _, _ = m.Get(id) })
		hammer("Usage", func() { _, _ = m.Usage(id, time.Now().Add(-time.Minute), time.Now()) })
		hammer("sampleIDs", func() { m.sampleIDs([]string{id}, true) })
	}
	hammer("Subscribe", func() {
		ch, unsub := m.Subscribe()
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
		}
		unsub()
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	rc := mustParse(webRecipe(os.Args[0], ""))
	apply := func(id string, i int, s State) {
		t.Helper()
		spec := InstanceSpec{ID: id, Recipe: rc, State: s, Params: map[string]any{"message": fmt.Sprintf("m%d", i)}}
		var err error
		if !within(t, "Apply", func() { err = m.Apply(spec) }) {
			t.FailNow()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// settle waits until id is in one of phases (or gone, for nil).
	settle := func(id string, phases ...Phase) {
		t.Helper()
		deadline := time.Now().Add(apiBound)
		for {
			var st InstanceStatus
			var ok bool
			if !within(t, "Get", func() { st, ok = m.Get(id) }) {
				t.FailNow()
			}
			if phases == nil && !ok {
				return
			}
			for _, ph := range phases {
				if ok && st.Phase == ph {
					return
				}
			}
			if ok && slices.Contains(phases, PhaseStopped) && st.Phase == PhasePending && st.Partition < 0 {
				return // stopped before it was ever started: it stays pending
			}
			if ok && st.Phase == PhaseFailed {
				t.Fatalf("%s failed: %s", id, st.Error)
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 8<<20)
				n := runtime.Stack(buf, true)
				t.Fatalf("%s not %v within %s (phase %s): every goroutine:\n%s", id, phases, apiBound, st.Phase, buf[:n])
			}
			if wedged.Load() {
				t.FailNow()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := range iters {
		for j, id := range ids {
			apply(id, i, StateStarted) // a new message: a restart after the first
			switch (i + j) % 3 {
			case 0: // stop while it starts (launching, first promise checks)
			case 1: // stop while its anomaly promises run
				settle(id, PhaseRunning)
			case 2:
				settle(id, PhaseRunning)
				time.Sleep(time.Duration(i%4) * 50 * time.Millisecond) // somewhere in a promise period
			}
		}
		for j, id := range ids {
			if (i+j)%2 == 0 {
				apply(id, i, StateStopped)
			} else {
				apply(id, i, StateDestroyed)
			}
		}
		for j, id := range ids {
			if (i+j)%2 == 0 {
				settle(id, PhaseStopped)
			} else {
				settle(id)
			}
		}
		if wedged.Load() {
			t.FailNow()
		}
	}
	if !within(t, "Close", func() { _ = m.Close() }) {
		t.FailNow()
	}
}

// Reading the nftables counters runs the nft command (up to its 5 s
// timeout): never under the manager's lock, so status and usage reads
// (the API, the biller) do not wait for it. A fake nft that blocks stands
// in: while it runs, Partitions, List and Usage answer.
func TestSlowNetMeterDoesNotHoldManagerLock(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.SampleInterval = time.Hour })
	rc := mustParse(shRecipe("exec sleep 1000", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "n", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "n", PhaseRunning)
	dir := t.TempDir()
	pidFile := dir + "/nft.pid"
	fake := dir + "/nft"
	// It records its pid, then blocks until the test kills it.
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s.tmp && mv %s.tmp %s\nexec sleep 1000\n", pidFile, pidFile, pidFile)
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m.sampleMu.Lock() // samplers read m.net under it
	saved := m.net
	m.net = &netMeter{table: "weft_fake", nft: fake, timeout: 10 * time.Minute}
	m.sampleMu.Unlock()
	t.Cleanup(func() {
		m.sampleMu.Lock()
		m.net = saved
		m.sampleMu.Unlock()
	})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		m.sampleIDs([]string{"n"}, false)
	}()
	var pid int
	waitFor(t, "the fake nft to run", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil && pid > 0
	})
	defer killPid(t, pid)
	ok := within(t, "status reads while nft runs", func() {
		_ = m.Partitions()
		_ = m.List()
		_, _ = m.Get("n")
		_, _ = m.Usage("n", time.Now().Add(-time.Minute), time.Now())
	})
	if !ok {
		t.FailNow()
	}
	if !alive(pid) {
		t.Fatal("the status reads returned only once the counter read (nft) was over")
	}
	killPid(t, pid)
	<-sampled
}

// A stop or destroy step that lingers is logged with its name; a quick
// one is not.
func TestSlowStepLogged(t *testing.T) {
	var buf strings.Builder
	m := &Manager{cfg: Config{Log: slog.New(slog.NewTextHandler(&buf, nil))}}
	m.slowStep("i1", "quick", time.Now())
	m.slowStep("i1", "destroy: wipe the partition", time.Now().Add(-2*slowStepAfter))
	out := buf.String()
	if strings.Contains(out, "quick") || !strings.Contains(out, "partition: slow step") || !strings.Contains(out, "destroy: wipe the partition") {
		t.Fatalf("log:\n%s", out)
	}
}
