package metering

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestSliceInterpolatesCountersAtEdges(t *testing.T) {
	// CPU grows 1 s of CPU per 2 s of wall time; memory ramps 0 → 100.
	samples := []Sample{
		{At: at(0), CPUNanos: 0, MemBytes: 0, DiskBytes: 10, NetBytes: 0},
		{At: at(2), CPUNanos: 1e9, MemBytes: 50, DiskBytes: 20, NetBytes: 200},
		{At: at(4), CPUNanos: 2e9, MemBytes: 100, DiskBytes: 30, NetBytes: 400},
	}
	u, err := Slice(samples, at(1), at(3))
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUNanos != 1e9 || u.CPUMs != 1000 {
		t.Errorf("cpu = %d ns, want 1e9", u.CPUNanos)
	}
	if u.NetBytes != 200 {
		t.Errorf("net = %d, want 200", u.NetBytes)
	}
	if u.MemAvgBytes != 50 {
		t.Errorf("mem avg = %d, want 50 (linear ramp 25..75)", u.MemAvgBytes)
	}
	if u.MemPeakBytes != 50 || u.Samples != 1 || u.DiskBytes != 20 {
		t.Errorf("peak %d samples %d disk %d, want 50 1 20", u.MemPeakBytes, u.Samples, u.DiskBytes)
	}
	if u.Coverage != 1 {
		t.Errorf("coverage = %v, want 1", u.Coverage)
	}
}

func TestSliceCounterReset(t *testing.T) {
	samples := []Sample{
		{At: at(0), CPUNanos: 5e9, NetBytes: Unknown, DiskBytes: Unknown},
		{At: at(1), CPUNanos: 6e9, NetBytes: Unknown, DiskBytes: Unknown},
		{At: at(2), CPUNanos: 1e9, NetBytes: Unknown, DiskBytes: Unknown}, // processes replaced: counter restarted
		{At: at(3), CPUNanos: 2e9, NetBytes: Unknown, DiskBytes: Unknown},
	}
	u, err := Slice(samples, at(0), at(3))
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUNanos != 3e9 {
		t.Errorf("cpu = %d, want 3e9 (1 + 1 after reset + 1)", u.CPUNanos)
	}
	if u.NetBytes != Unknown || u.DiskBytes != Unknown {
		t.Errorf("net %d disk %d, want Unknown", u.NetBytes, u.DiskBytes)
	}
}

func TestSliceOutsideSamplesExtrapolatesFlat(t *testing.T) {
	samples := []Sample{{At: at(10), CPUNanos: 7, MemBytes: 42, DiskBytes: 3}}
	u, err := Slice(samples, at(0), at(5))
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUNanos != 0 || u.MemAvgBytes != 42 || u.MemPeakBytes != 42 || u.Coverage != 0 || u.DiskBytes != 3 {
		t.Errorf("got %+v", u)
	}
	if _, err := Slice(nil, at(0), at(1)); !errors.Is(err, ErrNoSamples) {
		t.Errorf("empty: err = %v", err)
	}
	if _, err := Slice(samples, at(1), at(1)); !errors.Is(err, ErrNoSamples) {
		t.Errorf("empty period: err = %v", err)
	}
}

// genSamples draws a sorted series with a monotone CPU counter.
func genSamples(t *rapid.T) []Sample {
	n := rapid.IntRange(1, 40).Draw(t, "n")
	var out []Sample
	var ts, cpu int64
	for i := 0; i < n; i++ {
		ts += rapid.Int64Range(1, 5_000).Draw(t, "dt") * int64(time.Millisecond)
		cpu += rapid.Int64Range(0, 2e9).Draw(t, "dcpu")
		out = append(out, Sample{
			At:        t0.Add(time.Duration(ts)),
			CPUNanos:  cpu,
			MemBytes:  rapid.Int64Range(0, 1<<30).Draw(t, "mem"),
			DiskBytes: rapid.Int64Range(0, 1<<30).Draw(t, "disk"),
			NetBytes:  cpu / 3,
		})
	}
	return out
}

// Consecutive slices add up to the counter's growth over their union: no
// CPU time is billed twice or lost at a slice boundary.
func TestSlicesPartitionCounters(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSamples(t)
		first, last := s[0].At, s[len(s)-1].At
		k := rapid.IntRange(1, 10).Draw(t, "slices")
		span := last.Sub(first) + time.Second
		var sum int64
		var sumNet int64
		for i := 0; i < k; i++ {
			from := first.Add(span * time.Duration(i) / time.Duration(k))
			to := first.Add(span * time.Duration(i+1) / time.Duration(k))
			if !to.After(from) {
				continue
			}
			u, err := Slice(s, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if u.MemPeakBytes < u.MemAvgBytes {
				t.Fatalf("peak %d < avg %d", u.MemPeakBytes, u.MemAvgBytes)
			}
			if u.Coverage < 0 || u.Coverage > 1 {
				t.Fatalf("coverage %v", u.Coverage)
			}
			sum += u.CPUNanos
			sumNet += u.NetBytes
		}
		want := s[len(s)-1].CPUNanos - s[0].CPUNanos
		// each slice rounds its two edges to the nanosecond
		if d := sum - want; d < -int64(k) || d > int64(k) {
			t.Fatalf("slices sum to %d ns, counter grew %d", sum, want)
		}
		wantNet := s[len(s)-1].NetBytes - s[0].NetBytes
		if d := sumNet - wantNet; d < -int64(k) || d > int64(k) {
			t.Fatalf("net slices sum to %d, counter grew %d", sumNet, wantNet)
		}
	})
}

// A constant gauge averages to itself, whatever the sampling.
func TestConstantGaugeAverage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSamples(t)
		c := rapid.Int64Range(0, 1<<40).Draw(t, "c")
		for i := range s {
			s[i].MemBytes = c
		}
		from := s[0].At.Add(-time.Second)
		u, err := Slice(s, from, s[len(s)-1].At.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if d := u.MemAvgBytes - c; d < -1 || d > 1 {
			t.Fatalf("avg %d, want %d", u.MemAvgBytes, c)
		}
		if u.MemPeakBytes != c {
			t.Fatalf("peak %d, want %d", u.MemPeakBytes, c)
		}
	})
}

func TestAdd(t *testing.T) {
	a := Usage{From: at(0), To: at(1), CPUNanos: 1e6, MemAvgBytes: 100, MemPeakBytes: 150, DiskBytes: 5, NetBytes: 10, Coverage: 1}
	b := Usage{From: at(1), To: at(4), CPUNanos: 2e6, MemAvgBytes: 200, MemPeakBytes: 120, DiskBytes: 7, NetBytes: Unknown, Coverage: 0.5}
	s := a.Add(b)
	if s.CPUNanos != 3e6 || s.CPUMs != 3 || s.MemAvgBytes != 175 || s.MemPeakBytes != 150 || s.DiskBytes != 7 || s.NetBytes != Unknown {
		t.Errorf("got %+v", s)
	}
	if s.Coverage != 0.625 || !s.From.Equal(at(0)) || !s.To.Equal(at(4)) {
		t.Errorf("coverage %v from %v to %v", s.Coverage, s.From, s.To)
	}
}

// Two samples may share a timestamp (a coarse clock); the counter's growth
// between them belongs to exactly one of the slices meeting there.
func TestSliceDuplicateTimestampAtBoundary(t *testing.T) {
	samples := []Sample{
		{At: at(0), CPUNanos: 0, NetBytes: Unknown, DiskBytes: Unknown},
		{At: at(1), CPUNanos: 1e9, NetBytes: Unknown, DiskBytes: Unknown},
		{At: at(1), CPUNanos: 2e9, NetBytes: Unknown, DiskBytes: Unknown},
		{At: at(2), CPUNanos: 3e9, NetBytes: Unknown, DiskBytes: Unknown},
	}
	a, err := Slice(samples, at(0), at(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Slice(samples, at(1), at(2))
	if err != nil {
		t.Fatal(err)
	}
	if sum := a.CPUNanos + b.CPUNanos; sum != 3e9 {
		t.Errorf("slices bill %d + %d = %d ns, the counter grew 3e9", a.CPUNanos, b.CPUNanos, sum)
	}
	if a.Samples+b.Samples != 3 {
		t.Errorf("samples %d + %d, want 3 (the last lies at the end of b)", a.Samples, b.Samples)
	}
}
