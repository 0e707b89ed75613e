// Package metering is the pure arithmetic of partition metering: it turns
// periodic samples of an instance's counters and gauges into the usage of one
// billing slice. It reads no clock and touches no OS; package partition does
// the sampling.
//
// Usage:
//
//	u := metering.Slice(samples, from, to) // samples sorted by At
//	fmt.Println(u.CPUMillis(), u.MemAvgBytes, u.MemPeakBytes)
//
// Cumulative counters (CPU time, network bytes) are interpolated linearly at
// the slice boundaries, so consecutive slices add up exactly to the counter's
// growth; a counter that goes down (processes replaced, cgroup recreated) is
// taken as a reset to zero. Gauges (memory, disk) are averaged over time with
// the trapezoid rule and their peak is the largest sample inside the slice.
//
// Concurrency: every function is pure and safe for concurrent use.
package metering
