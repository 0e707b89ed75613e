package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal's master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	return m, s
}

// runOnTerminal runs the CLI with stderr on a pseudo-terminal and returns
// stdout and what reached the terminal.
func runOnTerminal(t *testing.T, args ...string) (string, string) {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		got <- b
	}()
	var out bytes.Buffer
	root := NewRoot(&out, slave)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		// The terminal turns \n into \r\n; a bare \r is what a spinner draws.
		return out.String(), strings.ReplaceAll(string(b), "\r\n", "\n")
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output never ended")
	}
	return "", ""
}

// On a terminal, a wait longer than a second draws a spinner saying what is
// waited on, and clears it; stdout holds only the result. With --json
// nothing is drawn even on a terminal.
func TestProgressDrawnOnTerminal(t *testing.T) {
	f := newFakeNode(t)
	f.pendingFor = progressDelay + 700*time.Millisecond
	web := exampleRecipe(t, "webserver.toml")

	stdout, tty := runOnTerminal(t, "--data-dir", f.dir, "request", "web", "--recipe", web, "--wait")
	if !strings.Contains(tty, "\r") || !strings.Contains(tty, "web: pending (auction open)") {
		t.Fatalf("no spinner on the terminal: %q", tty)
	}
	if strings.Contains(tty, "so far...") {
		t.Fatalf("plain progress lines on a terminal that has a spinner: %q", tty)
	}
	if strings.ContainsAny(stdout, "\r\x1b") || !strings.HasPrefix(stdout, "web  started on ") {
		t.Fatalf("stdout: %q", stdout)
	}

	stdout, tty = runOnTerminal(t, "--data-dir", f.dir, "request", "web2", "--recipe", web, "--wait", "--json")
	if strings.Contains(tty, "\r") {
		t.Fatalf("a spinner was drawn with --json: %q", tty)
	}
	if !strings.HasPrefix(strings.TrimSpace(stdout), "{") {
		t.Fatalf("stdout is not JSON: %q", stdout)
	}
}

// A byte bar on a terminal shows what is stored and how much.
func TestTransferBarOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(master)
		got <- b
	}()
	g := &Globals{err: slave}
	p := g.startTransfer("storing blob.bin", 3<<20)
	if p == nil {
		t.Fatal("no bar on a terminal")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		drawn := p.bar != nil
		p.mu.Unlock()
		if drawn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bar never appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, err := io.Copy(io.Discard, p.Reader(bytes.NewReader(make([]byte, 3<<20))))
	if err != nil || n != 3<<20 {
		t.Fatalf("read %d: %v", n, err)
	}
	p.mu.Lock()
	counted := p.bar.State().CurrentNum
	p.mu.Unlock()
	if counted != 3<<20 {
		t.Fatalf("the bar counted %d bytes, want %d", counted, 3<<20)
	}
	p.Stop()
	slave.Close()
	tty := string(<-got)
	if !strings.Contains(tty, "storing blob.bin") || !strings.Contains(tty, "%") || !strings.Contains(tty, "\r") {
		t.Fatalf("no byte bar: %q", tty)
	}
}
