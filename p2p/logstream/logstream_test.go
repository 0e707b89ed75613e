package logstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dirSource serves the logs in a directory (name.log), for tests.
type dirSource struct{ dir string }

func (d dirSource) Logs(string) ([]string, error) {
	ents, err := os.ReadDir(d.dir)
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".log"); ok {
			out = append(out, n)
		}
	}
	return out, err
}

func (d dirSource) OpenLog(_, name string) (*os.File, error) {
	return os.Open(filepath.Join(d.dir, name+".log"))
}

func serveText(t *testing.T, src Source, req Request) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	if err := Serve(context.Background(), src, req, &buf, nil); err != nil {
		return "", err
	}
	var out bytes.Buffer
	err := NewReader(&buf, nil).Copy(&out)
	return out.String(), err
}

func TestRequestRoundTrip(t *testing.T) {
	in := Request{Instance: "abc", Process: "httpd", Tail: 20, Since: 90 * time.Second, Follow: true}
	b, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil || out != in {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, bad := range []Request{{}, {Instance: strings.Repeat("x", MaxInstance+1)}, {Instance: "a", Tail: MaxTail + 1}, {Instance: "a", Process: strings.Repeat("p", MaxProcess+1)}} {
		if _, err := bad.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v encoded", bad)
		}
	}
}

func TestTailAndProcesses(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := range 1000 {
		lines = append(lines, strings.Repeat("x", i%7)+"line")
	}
	if err := os.WriteFile(filepath.Join(dir, "a.log"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.log"), []byte("one\ntwo"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := serveText(t, dirSource{dir}, Request{Instance: "i", Process: "a", Tail: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := "==> a <==\n" + strings.Join(lines[997:], "\n") + "\n"; got != want {
		t.Fatalf("tail 3:\n%q\nwant\n%q", got, want)
	}
	got, err = serveText(t, dirSource{dir}, Request{Instance: "i", Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "==> b <==\ntwo") || !strings.Contains(got, "==> a <==\n"+lines[999]+"\n") {
		t.Fatalf("both logs, tail 1: %q", got)
	}
	if _, err := serveText(t, dirSource{dir}, Request{Instance: "i", Process: "../etc/passwd"}); !errors.Is(err, ErrRefused) && err == nil {
		t.Fatal("a path as process name was served")
	}
	got, err = serveText(t, dirSource{dir}, Request{Instance: "i", Process: "b"})
	if err != nil || got != "==> b <==\none\ntwo" {
		t.Fatalf("whole log: %q %v", got, err)
	}
}

// syncBuffer is a buffer written by one goroutine and read by another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFollowSeesNewLinesAndTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, dirSource{dir}, Request{Instance: "i", Follow: true}, pw, nil); pw.Close() }()
	var out syncBuffer
	copied := make(chan error, 1)
	go func() { copied <- NewReader(pr, nil).Copy(&out) }()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in %q", s, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("first\n")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("second\n")
	waitFor("second\n")
	// A rotation copies the log away and truncates it: what follows is
	// read from the start (a log refilled past the old size within one
	// poll is not told from an append).
	_ = f.Truncate(0)
	_, _ = f.WriteString("rot\n")
	f.Close()
	waitFor("second\nrot\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
}

// TestHostileFrames checks that a reader fed bad frames fails cleanly.
func TestHostileFrames(t *testing.T) {
	for _, b := range [][]byte{
		{FrameData, 0xff, 0xff, 0xff, 0xff, 0x0f}, // a 4 GiB frame
		{FrameLog, 200, 1},                        // a name over MaxProcess
		{9, 0},                                    // an unknown type
		{FrameEnd, 1, 'x'},                        // an end with payload
		{FrameData, 5, 'a'},                       // truncated
		{FrameError, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, // overlong varint
	} {
		err := NewReader(bytes.NewReader(b), nil).Copy(io.Discard)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%v: %v, want ErrMalformed", b, err)
		}
	}
}
