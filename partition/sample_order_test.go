package partition

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftgrid/weft/partition/metering"
	"github.com/weftgrid/weft/recipes/clock"
)

// sampleIDs runs concurrently (the sampling loop, every supervisor when its
// process exits, stop, start). A sampler that read the clock first but
// appends last must not leave the series out of order: slices computed from
// it would lose (or, when its counter reading is the older one, bill the
// whole cgroup counter as a "reset") CPU time.
func TestConcurrentSamplesKeepSeriesOrdered(t *testing.T) {
	cgBase := t.TempDir()
	p0 := filepath.Join(cgBase, "p0")
	if err := os.MkdirAll(p0, 0o755); err != nil {
		t.Fatal(err)
	}
	setCPU := func(ns int64) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(p0, "cpu.stat"), fmt.Appendf(nil, "usage_usec %d\n", ns/1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(p0, "memory.current"), []byte("1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setCPU(0)

	var mu sync.Mutex
	cur := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var onNow func()
	m := &Manager{
		dir:    t.TempDir(),
		cg:     &cgroups{version: "v2", base: cgBase, cpu: true, mem: true},
		insts:  map[string]*instance{"x": {rec: record{ID: "x", Partition: 0}}},
		series: map[string]*series{},
	}
	m.cfg.Retention, m.cfg.DiskInterval = time.Hour, time.Hour
	m.cfg.Clock = nowClock{clock.System(), func() time.Time {
		mu.Lock()
		now := cur
		cur = cur.Add(time.Second)
		hook := onNow
		onNow = nil
		mu.Unlock()
		if hook != nil {
			hook() // another sampler runs while this one is under way
		}
		return now
	}}

	m.sampleIDs([]string{"x"}, false)
	setCPU(10e9)
	onNow = func() { m.sampleIDs([]string{"x"}, false) }
	m.sampleIDs([]string{"x"}, false)
	setCPU(12e9)
	m.sampleIDs([]string{"x"}, false)

	m.mu.Lock()
	samples := slices.Clone(m.series["x"].samples)
	m.mu.Unlock()
	if !slices.IsSortedFunc(samples, func(a, b metering.Sample) int { return a.At.Compare(b.At) }) {
		t.Errorf("samples out of order: %+v", samples)
	}
	// Slices cut at every sample's time add up to the counter's growth.
	var bounds []time.Time
	for _, s := range samples {
		bounds = append(bounds, s.At)
	}
	slices.SortFunc(bounds, time.Time.Compare)
	bounds = slices.CompactFunc(bounds, time.Time.Equal)
	bounds = append(bounds, bounds[len(bounds)-1].Add(time.Second))
	var sum int64
	for i := 0; i+1 < len(bounds); i++ {
		u, err := m.Usage("x", bounds[i], bounds[i+1])
		if err != nil {
			t.Fatal(err)
		}
		sum += u.CPUNanos
	}
	if sum != 12e9 {
		t.Errorf("slices bill %d ns of CPU, the counter grew 12e9", sum)
	}
}

// nowClock is c with Now replaced by now.
type nowClock struct {
	clock.Clock
	now func() time.Time
}

func (c nowClock) Now() time.Time { return c.now() }
