package partition

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLogsStayBeneathTheLogDir plants a symlink and a FIFO among an
// instance's logs: they are neither listed nor opened (and the FIFO never
// blocks), names that are paths are refused, a stopped instance's log
// stays readable, and a log directory swapped for a symlink is refused.
func TestLogsStayBeneathTheLogDir(t *testing.T) {
	m := newTestManager(t, nil)
	rc := mustParse(shRecipe("echo hello; ln -s /etc/passwd $HOME/log/evil.log; mkfifo $HOME/log/fifo.log; touch $HOME/log/ready; exec sleep 1000", false, "always"))
	spec := InstanceSpec{ID: "logs", Recipe: rc, State: StateStarted}
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "logs", PhaseRunning)
	logDir := filepath.Join(m.partDir(st.Partition), "log")
	waitFor(t, "the planted files", func() bool { _, err := os.Stat(filepath.Join(logDir, "ready")); return err == nil })
	names, err := m.Logs("logs")
	if err != nil || !slices.Equal(names, []string{"main"}) {
		t.Fatalf("logs %v, %v; want [main]", names, err)
	}
	read := func(name string) (string, error) {
		f, err := m.OpenLog("logs", name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return string(b), err
	}
	waitFor(t, "the log line", func() bool { s, _ := read("main"); return strings.Contains(s, "hello") })
	for _, bad := range []string{"evil", "fifo", "../log/main", "..", "/etc/passwd", "main.log"} {
		if s, err := read(bad); err == nil {
			t.Errorf("OpenLog(%q) served %q", bad, s)
		}
	}
	spec.State = StateStopped
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "logs", PhaseStopped)
	if s, err := read("main"); err != nil || !strings.Contains(s, "hello") {
		t.Fatalf("a stopped instance's log: %q, %v", s, err)
	}
	// The instance owns its directory: swap the log dir for a symlink.
	if err := os.Rename(logDir, logDir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(logDir+".old", logDir); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Logs("logs"); err == nil {
		t.Error("listed the logs through a symlinked log directory")
	}
	if _, err := read("main"); err == nil {
		t.Error("opened a log through a symlinked log directory")
	}
	if _, err := m.OpenLog("nope", "main"); !errors.Is(err, ErrNoLog) {
		t.Errorf("unknown instance: %v", err)
	}
}
