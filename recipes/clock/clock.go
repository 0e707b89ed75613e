// Package clock is the time source of weft's cores: the current time and
// the timers and tickers that wait on it. A core takes a Clock where it is
// built and reads time only through it, so that tests can drive time with
// a Fake instead of waiting for it. System is the real clock.
//
// Usage:
//
//	c := clock.System()
//	t := c.NewTicker(time.Second)
//	defer t.Stop()
//	select {
//	case <-t.C():
//	case <-c.After(5 * time.Second):
//	}
//
//	f := clock.NewFake(time.Unix(0, 0)) // in tests
//	f.Advance(time.Second)               // fires what came due
//
// Concurrency: every Clock, Timer and Ticker here is safe for concurrent
// use.
//
// Waiting on the kernel (a signalled process to die, a cgroup to freeze)
// or bounding real I/O (a dial, a hook) is not the clock's business: those
// take real time whatever a core's clock says, so they stay on the time
// package (context deadlines) or on System.
package clock

import "time"

// Clock gives the time and the timers and tickers that wait on it.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that fires every d (d > 0). Like
	// time.Ticker, it drops ticks a slow receiver missed.
	NewTicker(d time.Duration) Ticker
	// After is NewTimer(d).C() for waits that are never stopped early.
	After(d time.Duration) <-chan time.Time
}

// Timer is a Clock's one-shot timer (time.Timer on System).
type Timer interface {
	// C delivers the time the timer fired.
	C() <-chan time.Time
	// Stop prevents the timer from firing; false when it already fired or
	// was stopped.
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether it had
	// been active.
	Reset(d time.Duration) bool
}

// Ticker is a Clock's ticker (time.Ticker on System).
type Ticker interface {
	// C delivers the ticks.
	C() <-chan time.Time
	// Stop stops the ticks.
	Stop()
}

// System returns the real clock.
func System() Clock { return system{} }

type system struct{}

func (system) Now() time.Time                         { return time.Now() }
func (system) NewTimer(d time.Duration) Timer         { return sysTimer{time.NewTimer(d)} }
func (system) NewTicker(d time.Duration) Ticker       { return sysTicker{time.NewTicker(d)} }
func (system) After(d time.Duration) <-chan time.Time { return time.After(d) }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time        { return t.t.C }
func (t sysTimer) Stop() bool                 { return t.t.Stop() }
func (t sysTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }
