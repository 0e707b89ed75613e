package cli

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressDelay is how long a wait lasts before a spinner appears: quick
// commands never draw one.
const progressDelay = time.Second

// progress is a spinner with elapsed time on stderr for a wait or a
// transfer the CLI cannot size (the node does the transfer). It is drawn
// only when stderr is a terminal and --json is off, and only once the wait
// lasted progressDelay; it is cleared when it stops, so it leaves nothing
// in logs or pipes. A nil *progress is valid and does nothing.
type progress struct {
	w    io.Writer
	mu   sync.Mutex
	desc string
	bar  *progressbar.ProgressBar
	stop chan struct{}
	done chan struct{}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// drawsProgress reports whether commands may draw progress on stderr.
func (g *Globals) drawsProgress() bool { return !g.JSON && isTerminal(g.err) }

// startProgress starts the spinner described by desc; the caller stops it
// with Stop before printing anything else. Returns nil when nothing may be
// drawn.
func (g *Globals) startProgress(desc string) *progress {
	if !g.drawsProgress() {
		return nil
	}
	p := &progress{w: g.err, desc: desc, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTimer(progressDelay)
	defer t.Stop()
	select {
	case <-p.stop:
		return
	case <-t.C:
	}
	p.mu.Lock()
	p.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.desc),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetSpinnerChangeInterval(100*time.Millisecond),
	)
	_ = p.bar.RenderBlank()
	p.mu.Unlock()
	<-p.stop
}

// Describe changes what the spinner says (e.g. the state waited on).
func (p *progress) Describe(desc string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if desc == p.desc {
		return
	}
	p.desc = desc
	if p.bar != nil {
		p.bar.Describe(desc)
	}
}

// Stop clears the spinner (if it was drawn) and waits until it is gone.
// Calling it again does nothing.
func (p *progress) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		return
	default:
		close(p.stop)
	}
	p.mu.Unlock()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}
