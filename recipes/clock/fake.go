package clock

import (
	"sync"
	"time"
)

// Fake is a Clock that moves only when told (Advance, Set). Its timers and
// tickers fire, in time order, when the clock reaches them; each channel
// holds one value and a tick that finds it full is dropped, as with the
// time package. For tests.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
	changed chan struct{} // closed and replaced when waiters change
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

type fakeWaiter struct {
	f      *Fake
	c      chan time.Time
	at     time.Time
	period time.Duration // > 0 for a ticker
	active bool
}

// Now is the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer firing when the clock reaches Now()+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &fakeWaiter{f: f, c: make(chan time.Time, 1)}
	w.Reset(d)
	return w
}

// NewTicker returns a ticker firing each time the clock passes a multiple
// of d after now.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &fakeWaiter{f: f, c: make(chan time.Time, 1), period: d}
	f.mu.Lock()
	w.at, w.active = f.now.Add(d), true
	f.addLocked(w)
	f.mu.Unlock()
	return fakeTicker{w}
}

type fakeTicker struct{ w *fakeWaiter }

func (t fakeTicker) C() <-chan time.Time { return t.w.c }
func (t fakeTicker) Stop()               { t.w.Stop() }

// After is NewTimer(d).C().
func (f *Fake) After(d time.Duration) <-chan time.Time { return f.NewTimer(d).C() }

// Advance moves the clock d forward and fires what came due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(f.now.Add(d))
}

// Set moves the clock to t (forward or back) and fires what came due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(t)
}

// Waiters is how many timers and tickers are armed: a test waits for the
// code under test to arm its timer before it advances the clock past it.
// A timer of After counts until it fires, also when its receiver stopped
// waiting for it (a select that took another case).
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// WaitersChanged returns a channel closed the next time a timer or ticker
// is armed, stopped or fired (to wait for Waiters without polling).
func (f *Fake) WaitersChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *Fake) setLocked(t time.Time) {
	f.now = t
	for {
		var next *fakeWaiter
		for _, w := range f.waiters {
			if !w.at.After(t) && (next == nil || w.at.Before(next.at)) {
				next = w
			}
		}
		if next == nil {
			return
		}
		select {
		case next.c <- next.at:
		default: // the receiver has not taken the last one: dropped
		}
		if next.period > 0 {
			for !next.at.After(t) {
				next.at = next.at.Add(next.period)
			}
		} else {
			next.active = false
			f.removeLocked(next)
		}
		f.notifyLocked()
	}
}

func (f *Fake) addLocked(w *fakeWaiter) {
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
	f.setLocked(f.now) // a timer of d <= 0 fires at once
}

func (f *Fake) removeLocked(w *fakeWaiter) {
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			f.notifyLocked()
			return
		}
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (w *fakeWaiter) C() <-chan time.Time { return w.c }

func (w *fakeWaiter) Stop() bool {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	was := w.active
	w.active = false
	w.f.removeLocked(w)
	return was
}

func (w *fakeWaiter) Reset(d time.Duration) bool {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	was := w.active
	w.f.removeLocked(w)
	select { // as time.Timer.Reset since Go 1.23: no stale value after it
	case <-w.c:
	default:
	}
	if w.period > 0 {
		d = w.period
	}
	w.at, w.active = w.f.now.Add(d), true
	w.f.addLocked(w)
	return was
}
