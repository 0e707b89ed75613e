package logstream

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Source opens an instance's logs on the host (partition.Manager).
type Source interface {
	// Logs lists the instance's process logs by process name.
	Logs(instance string) ([]string, error)
	// OpenLog opens one for reading, beneath the partition's log directory.
	OpenLog(instance, process string) (*os.File, error)
}

// maxTailScan bounds how far from a log's end a tail looks for lines.
const maxTailScan = 16 << 20

// Serve writes req's answer to w as frames: each selected log (a log frame
// naming it, then data frames), then, when following, what is written next
// until ctx ends; then an end frame. A failure is reported in an error
// frame (its reason) as well as returned. deadline, if not nil, is set
// before each write (WriteTimeout).
func Serve(ctx context.Context, src Source, req Request, w io.Writer, deadline func(time.Time)) error {
	fw := &frameWriter{w: w, deadline: deadline}
	err := serve(ctx, src, req, fw)
	if err != nil && !errors.Is(err, errWrite) {
		reason := err.Error()
		if len(reason) > MaxReason {
			reason = reason[:MaxReason]
		}
		_ = fw.frame(FrameError, []byte(reason))
		return err
	}
	if err == nil {
		err = fw.frame(FrameEnd, nil)
	}
	return err
}

var errWrite = errors.New("logstream: write failed")

type frameWriter struct {
	w        io.Writer
	deadline func(time.Time)
	cur      string
	last     time.Time
}

func (fw *frameWriter) frame(typ byte, p []byte) error {
	if fw.deadline != nil {
		fw.deadline(time.Now().Add(WriteTimeout))
	}
	if err := writeFrame(fw.w, typ, p); err != nil {
		return errors.Join(errWrite, err)
	}
	fw.last = time.Now()
	return nil
}

// data writes p as data frames of process name (a log frame first when the
// process changes).
func (fw *frameWriter) data(name string, p []byte) error {
	if name != fw.cur {
		if err := fw.frame(FrameLog, []byte(name)); err != nil {
			return err
		}
		fw.cur = name
	}
	for len(p) > 0 {
		n := min(len(p), MaxFrame)
		if err := fw.frame(FrameData, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// tracked is a log being served: its file and the offset sent up to.
type tracked struct {
	name string
	f    *os.File
	off  int64
}

func serve(ctx context.Context, src Source, req Request, fw *frameWriter) error {
	names, err := src.Logs(req.Instance)
	if err != nil {
		return err
	}
	if req.Process != "" {
		if !slices.Contains(names, req.Process) {
			return errors.New("no log of process " + req.Process + " in this instance (its logs: " + joinOr(names) + ")")
		}
		names = []string{req.Process}
	}
	var logs []*tracked
	defer func() {
		for _, t := range logs {
			t.f.Close()
		}
	}()
	for _, name := range names {
		f, err := src.OpenLog(req.Instance, name)
		if err != nil {
			return err
		}
		t := &tracked{name: name, f: f}
		logs = append(logs, t)
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		t.off = fi.Size()
		if req.Since > 0 && time.Since(fi.ModTime()) > req.Since {
			continue // not written to within --since
		}
		start := int64(0)
		if req.Tail > 0 {
			if start, err = tailStart(f, fi.Size(), req.Tail); err != nil {
				return err
			}
		}
		if err := copyRange(fw, t, start, fi.Size()); err != nil {
			return err
		}
	}
	if !req.Follow {
		return nil
	}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, t := range logs {
			fi, err := t.f.Stat()
			if err != nil {
				return err
			}
			size := fi.Size()
			if size < t.off {
				t.off = 0 // rotated: copied away and truncated
			}
			if size > t.off {
				if err := copyRange(fw, t, t.off, size); err != nil {
					return err
				}
			}
		}
		if time.Since(fw.last) >= Keepalive {
			if err := fw.frame(FrameKeepalive, nil); err != nil {
				return err
			}
		}
	}
}

// copyRange sends [from, to) of t's log and moves its offset to to.
func copyRange(fw *frameWriter, t *tracked, from, to int64) error {
	buf := make([]byte, MaxFrame)
	for off := from; off < to; {
		n, err := t.f.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		if n > 0 {
			if werr := fw.data(t.name, buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break // truncated meanwhile
			}
			return err
		}
	}
	t.off = to
	return nil
}

// tailStart is the offset of the first of the last n lines of f (size
// bytes), looking back at most maxTailScan bytes.
func tailStart(f *os.File, size int64, n int) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	end := size
	// A last line without its newline counts as a line.
	need := n
	if size > 0 {
		if _, err := f.ReadAt(buf[:1], size-1); err != nil {
			return 0, err
		}
		if buf[0] == '\n' {
			need++
		}
	}
	for end > 0 && size-end < maxTailScan {
		start := max(0, end-chunk)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] == '\n' {
				need--
				if need == 0 {
					return start + int64(i) + 1, nil
				}
			}
		}
		end = start
	}
	if end > 0 {
		return end, nil // bounded: what the scan covered
	}
	return 0, nil
}

func joinOr(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
