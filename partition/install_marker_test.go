package partition

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multiformats/go-multibase"
)

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// A failed install is never taken for a finished one, whatever the
// recipe's files or install commands leave in the software directory
// (the marker used to live there, under a name a recipe may use).
func TestFailedInstallNotTakenForDone(t *testing.T) {
	m := newTestManager(t, nil)
	counter := filepath.Join(t.TempDir(), "runs")
	letInstallsWrite(m, filepath.Dir(counter))
	rc := mustParse(`
name = "badinstall"
version = "1"
[install]
commands = ["echo run >> ` + counter + `; exit 1"]
[[files]]
path = ".weft-installed"
content = ""
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "exec sleep 1000"]
`)
	if err := m.Apply(InstanceSpec{ID: "b", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "b", PhaseFailed)
	if err := m.SetState("b", StateStarted); err != nil { // retry
		t.Fatal(err)
	}
	var st InstanceStatus
	waitFor(t, "the retry to install again or run", func() bool {
		st, _ = m.Get("b")
		return st.Phase == PhaseRunning || st.Phase == PhaseStarting ||
			(countLines(counter) >= 2 && st.Phase == PhaseFailed)
	})
	if st.Phase != PhaseFailed || !strings.Contains(st.Error, "install") {
		t.Fatalf("after a failed install the retry is %s (%q): the software dir was taken as installed", st.Phase, st.Error)
	}
}

// The software dir is keyed by the recipe's CID, not by how the request
// spelled it: one recipe is installed once, and a CID that is not the
// recipe's is refused.
func TestSoftwareDirKeyedByRecipeCID(t *testing.T) {
	m := newTestManager(t, nil)
	counter := filepath.Join(t.TempDir(), "runs")
	letInstallsWrite(m, filepath.Dir(counter))
	rc := mustParse(installRecipe("inst", "echo run >> "+counter))
	c := rc.CID()
	b16, err := c.StringOfBase(multibase.Base16)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(InstanceSpec{ID: "a", Recipe: rc, RecipeCID: c.String(), State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "a", PhaseRunning)
	if err := m.Apply(InstanceSpec{ID: "b", Recipe: rc, RecipeCID: b16, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "b", PhaseRunning)
	if n := countLines(counter); n != 1 {
		t.Errorf("one recipe installed %d times (CID spelled %s and %s)", n, c, b16)
	}
	if st, _ := m.Get("b"); st.RecipeCID != c.String() {
		t.Errorf("recipe CID recorded as %q, want %s", st.RecipeCID, c)
	}
	other := mustParse(strings.Replace(shRecipe("exec sleep 1000", false, "always"), `name = "sh"`, `name = "other"`, 1))
	err = m.Apply(InstanceSpec{ID: "c", Recipe: other, RecipeCID: c.String(), State: StateStarted})
	if !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("a recipe applied under another recipe's CID (sharing its software dir): err %v", err)
	}
}
