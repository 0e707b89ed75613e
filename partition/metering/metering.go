package metering

import (
	"errors"
	"sort"
	"time"
)

// ErrNoSamples means no sample lies in or around the asked period.
var ErrNoSamples = errors.New("metering: no samples for the period")

// Unknown marks a measure the host does not let the node take.
const Unknown int64 = -1

// Sample is one reading of an instance's resources at a point in time.
type Sample struct {
	// At is when the reading was taken.
	At time.Time
	// CPUNanos is the cumulative CPU time (user + system) in nanoseconds.
	CPUNanos int64
	// MemBytes is the memory in use at At, in bytes.
	MemBytes int64
	// DiskBytes is the size of the partition's directory at At, in bytes
	// (Unknown when not measured).
	DiskBytes int64
	// NetBytes is the cumulative network bytes, received plus sent
	// (Unknown when not measurable).
	NetBytes int64
}

// Usage is what an instance used during one period.
type Usage struct {
	// From and To bound the period (To excluded).
	From time.Time `json:"from"`
	// To: see From.
	To time.Time `json:"to"`
	// CPUNanos is CPU time used in the period, in nanoseconds.
	CPUNanos int64 `json:"cpu_ns"`
	// CPUMs is CPUNanos rounded to milliseconds.
	CPUMs int64 `json:"cpu_ms"`
	// MemAvgBytes is the time-weighted average memory, in bytes.
	MemAvgBytes int64 `json:"mem_avg_bytes"`
	// MemPeakBytes is the largest memory sample in the period, in bytes.
	MemPeakBytes int64 `json:"mem_peak_bytes"`
	// DiskBytes is the largest disk sample in the period (Unknown if none).
	DiskBytes int64 `json:"disk_bytes"`
	// NetBytes is network bytes in the period (Unknown if not measurable).
	NetBytes int64 `json:"net_bytes"`
	// Samples is how many samples fell inside the period.
	Samples int `json:"samples"`
	// Coverage is the fraction of the period (0..1) that lies between the
	// first and last sample used; below 1 the edges were extrapolated flat.
	Coverage float64 `json:"coverage"`
}

// CPUMillis returns the CPU time in milliseconds (rounded to nearest).
func (u Usage) CPUMillis() int64 { return (u.CPUNanos + 500_000) / 1_000_000 }

// Add returns the sum of u and v as if one period: counters add, averages
// are weighted by duration, peaks take the max. Used to merge slices.
func (u Usage) Add(v Usage) Usage {
	du, dv := u.To.Sub(u.From), v.To.Sub(v.From)
	out := Usage{From: minTime(u.From, v.From), To: maxTime(u.To, v.To)}
	out.CPUNanos = u.CPUNanos + v.CPUNanos
	out.CPUMs = out.CPUMillis()
	if du+dv > 0 {
		out.MemAvgBytes = int64((float64(u.MemAvgBytes)*float64(du) + float64(v.MemAvgBytes)*float64(dv)) / float64(du+dv))
		out.Coverage = (u.Coverage*float64(du) + v.Coverage*float64(dv)) / float64(du+dv)
	}
	out.MemPeakBytes = max(u.MemPeakBytes, v.MemPeakBytes)
	out.DiskBytes = max(u.DiskBytes, v.DiskBytes)
	if u.NetBytes == Unknown || v.NetBytes == Unknown {
		out.NetBytes = Unknown
	} else {
		out.NetBytes = u.NetBytes + v.NetBytes
	}
	out.Samples = u.Samples + v.Samples
	return out
}

// Slice computes the usage over [from, to) from samples sorted by At
// (unsorted input gives meaningless results; duplicates of At are fine).
// Samples outside the period are used only to interpolate its edges. It
// returns ErrNoSamples when samples is empty or to is not after from.
func Slice(samples []Sample, from, to time.Time) (Usage, error) {
	u := Usage{From: from, To: to, DiskBytes: Unknown}
	if len(samples) == 0 || !to.After(from) {
		return u, ErrNoSamples
	}
	// Only the samples around the period matter: the last before from
	// through the first after to, with every sample at from or at to (two
	// samples may share a timestamp: both edges must see all of them, or
	// the growth between them would be dropped by both slices).
	first := sort.Search(len(samples), func(i int) bool { return !samples[i].At.Before(from) })
	last := sort.Search(len(samples), func(i int) bool { return samples[i].At.After(to) })
	samples = samples[max(first-1, 0):min(last+1, len(samples))]
	// Counters: build the reset-adjusted cumulative series.
	cpu := counterSeries(samples, func(s Sample) int64 { return s.CPUNanos })
	u.CPUNanos = max(0, interp(samples, cpu, to)-interp(samples, cpu, from))
	u.CPUMs = u.CPUMillis()
	netKnown := true
	for _, s := range samples {
		if s.NetBytes < 0 {
			netKnown = false
			break
		}
	}
	if netKnown {
		net := counterSeries(samples, func(s Sample) int64 { return s.NetBytes })
		u.NetBytes = max(0, interp(samples, net, to)-interp(samples, net, from))
	} else {
		u.NetBytes = Unknown
	}
	// Gauges: time-weighted average over the covered part, peak inside.
	mem := make([]float64, len(samples))
	for i, s := range samples {
		mem[i] = float64(s.MemBytes)
	}
	lo, hi := maxTime(from, samples[0].At), minTime(to, samples[len(samples)-1].At)
	if hi.After(lo) {
		u.MemAvgBytes = int64(integral(samples, mem, lo, hi) / float64(hi.Sub(lo)))
		u.Coverage = float64(hi.Sub(lo)) / float64(to.Sub(from))
	} else {
		// The period lies outside the samples or the samples are one point:
		// extrapolate flat from the nearest.
		u.MemAvgBytes = int64(interpF(samples, mem, from))
	}
	peak, disk := int64(-1), Unknown
	for _, s := range samples {
		if s.At.Before(from) || !s.At.Before(to) {
			continue
		}
		u.Samples++
		peak = max(peak, s.MemBytes)
		if s.DiskBytes >= 0 {
			disk = max(disk, s.DiskBytes)
		}
	}
	if peak < 0 { // no sample inside: the edges are the best estimate
		peak = max(int64(interpF(samples, mem, from)), int64(interpF(samples, mem, to)))
	}
	u.MemPeakBytes = max(peak, u.MemAvgBytes)
	if disk == Unknown {
		disk = nearestDisk(samples, to)
	}
	u.DiskBytes = disk
	return u, nil
}

// counterSeries turns a counter that may reset into a non-decreasing series.
func counterSeries(samples []Sample, get func(Sample) int64) []float64 {
	out := make([]float64, len(samples))
	var acc float64
	for i, s := range samples {
		v := get(s)
		switch {
		case i == 0:
			acc = float64(v)
		case v >= get(samples[i-1]):
			acc += float64(v - get(samples[i-1]))
		default: // reset: the counter restarted from zero
			acc += float64(max(v, 0))
		}
		out[i] = acc
	}
	return out
}

// interp returns the series value at t, linear between samples and flat
// beyond the first and last sample.
func interp(samples []Sample, v []float64, t time.Time) int64 {
	return int64(interpF(samples, v, t) + 0.5)
}

func interpF(samples []Sample, v []float64, t time.Time) float64 {
	n := len(samples)
	if !t.After(samples[0].At) {
		return v[0]
	}
	if !t.Before(samples[n-1].At) {
		return v[n-1]
	}
	// binary search for the first sample after t
	lo, hi := 0, n-1
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if samples[mid].At.After(t) {
			hi = mid
		} else {
			lo = mid
		}
	}
	a, b := samples[lo], samples[hi]
	span := b.At.Sub(a.At)
	if span <= 0 {
		return v[hi]
	}
	f := float64(t.Sub(a.At)) / float64(span)
	return v[lo] + (v[hi]-v[lo])*f
}

// integral is the trapezoid-rule integral of the series over [lo, hi]
// (value × nanoseconds); lo and hi lie within the samples' span.
func integral(samples []Sample, v []float64, lo, hi time.Time) float64 {
	var sum float64
	prevT, prevV := lo, interpF(samples, v, lo)
	for i, s := range samples {
		if !s.At.After(lo) {
			continue
		}
		if !s.At.Before(hi) {
			break
		}
		sum += (prevV + v[i]) / 2 * float64(s.At.Sub(prevT))
		prevT, prevV = s.At, v[i]
	}
	endV := interpF(samples, v, hi)
	sum += (prevV + endV) / 2 * float64(hi.Sub(prevT))
	return sum
}

func nearestDisk(samples []Sample, t time.Time) int64 {
	best := Unknown
	var bestD time.Duration = -1
	for _, s := range samples {
		if s.DiskBytes < 0 {
			continue
		}
		d := s.At.Sub(t)
		if d < 0 {
			d = -d
		}
		if bestD < 0 || d < bestD {
			best, bestD = s.DiskBytes, d
		}
	}
	return best
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
