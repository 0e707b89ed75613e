package simnet

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/recipes/clock"
	"github.com/weftgrid/weft/scheduler"
)

// recordingClock is the system clock that records the tickers asked of it.
type recordingClock struct {
	mu      sync.Mutex
	tickers []time.Duration
}

func (c *recordingClock) Now() time.Time { return time.Now() }

func (c *recordingClock) NewTicker(d time.Duration) scheduler.Ticker {
	c.mu.Lock()
	c.tickers = append(c.tickers, d)
	c.mu.Unlock()
	return clock.System().NewTicker(d)
}

// The market's state loop ticks on the injected clock, not on real time.
func TestMarketTicksOnItsClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := New(Options{Seed: 7})
		defer net.Close()
		clock := &recordingClock{}
		cfg := scheduler.DefaultConfig()
		if _, err := net.AddNode(context.Background(), NodeOptions{Config: &cfg, Clock: clock}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		clock.mu.Lock()
		defer clock.mu.Unlock()
		if len(clock.tickers) == 0 || clock.tickers[0] != cfg.Tick {
			t.Fatalf("tickers asked of the clock: %v, want the market's tick %s", clock.tickers, cfg.Tick)
		}
	})
}
