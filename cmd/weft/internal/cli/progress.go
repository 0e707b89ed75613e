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
// commands never draw one. (A variable for tests.)
var progressDelay = time.Second

// progress is a spinner with elapsed time on stderr for a wait or a
// transfer the CLI cannot size (the node does the transfer). It is drawn
// only when stderr is a terminal and --json is off, and only once the wait
// lasted progressDelay; it is cleared when it stops, so it leaves nothing
// in logs or pipes. A nil *progress is valid and does nothing.
//
// With a total (startTransfer) it is a byte bar instead: size, rate and
// time left, fed by Reader.
type progress struct {
	w     io.Writer
	total int64 // -1: a spinner
	mu    sync.Mutex
	desc  string
	n     int64 // bytes read so far (byte bars)
	bar   *progressbar.ProgressBar
	stop  chan struct{}
	done  chan struct{}
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
	p := &progress{w: g.err, total: -1, desc: desc, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// startTransfer starts a byte bar for total bytes read through Reader;
// like startProgress it draws only on a terminal without --json, after
// progressDelay. Returns nil when nothing may be drawn.
func (g *Globals) startTransfer(desc string, total int64) *progress {
	if !g.drawsProgress() {
		return nil
	}
	p := &progress{w: g.err, total: total, desc: desc, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Reader returns r counting what is read into the bar (r itself for nil).
func (p *progress) Reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if n > 0 {
		pr.p.mu.Lock()
		pr.p.n += int64(n)
		if pr.p.bar != nil {
			_ = pr.p.bar.Add(n)
		}
		pr.p.mu.Unlock()
	}
	return n, err
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
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.desc),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	}
	if p.total < 0 {
		opts = append(opts, progressbar.OptionSpinnerType(14), progressbar.OptionSetSpinnerChangeInterval(100*time.Millisecond))
	} else {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetWidth(30))
	}
	p.bar = progressbar.NewOptions64(p.total, opts...)
	if p.total >= 0 && p.n > 0 {
		_ = p.bar.Set64(p.n)
	} else {
		_ = p.bar.RenderBlank()
	}
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
