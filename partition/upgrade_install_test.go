package partition

import (
	"os"
	"path/filepath"
	"testing"
)

// A node upgraded from a version that marked a finished install inside the
// software dir (software/CID/.weft-installed) keeps that install: it is not
// wiped and installed again (instances of the old version run from it).
func TestUpgradeKeepsInstallMarkedTheOldWay(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "runs")
	rc := mustParse(installRecipe("legacy", "echo run >> "+counter))
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	// The previous version's data dir: the recipe installed, marked inside.
	soft := filepath.Join(dir, "software", rc.CID().String())
	if err := os.MkdirAll(soft, 0o755); err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(soft, "payload")
	if err := os.WriteFile(payload, []byte("built by the old install\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(soft, ".weft-installed"), []byte("2026-12-01T00:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startManager(t, cfg)
	t.Cleanup(func() { m.Close() })
	letInstallsWrite(m, filepath.Dir(counter))
	if err := m.Apply(InstanceSpec{ID: "a", Recipe: rc, RecipeCID: rc.CID().String(), State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "a", PhaseRunning)
	if n := countLines(counter); n != 0 {
		t.Errorf("the recipe installed by the previous version was installed again (%d runs)", n)
	}
	if _, err := os.Stat(payload); err != nil {
		t.Errorf("the previous version's software dir was wiped: %v", err)
	}
}

// A legacy marker is trusted only once, for what the previous version
// left: one that a failed install of this version leaves (a recipe file
// or an install command may write it) does not make the install count as
// done.
func TestLegacyMarkerLeftByFailedInstallNotTrusted(t *testing.T) {
	m := newTestManager(t, nil)
	counter := filepath.Join(t.TempDir(), "runs")
	letInstallsWrite(m, filepath.Dir(counter))
	rc := mustParse(installRecipe("badlegacy", "echo run >> "+counter+"; touch .weft-installed; exit 1"))
	if err := m.Apply(InstanceSpec{ID: "b", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "b", PhaseFailed)
	m.Close()
	m2 := newTestManager(t, func(c *Config) { c.DataDir = m.cfg.DataDir; c.PortBase = m.cfg.PortBase })
	letInstallsWrite(m2, filepath.Dir(counter))
	if err := m2.SetState("b", StateStarted); err != nil { // retry
		t.Fatal(err)
	}
	waitFor(t, "the install to run again", func() bool { return countLines(counter) >= 2 })
	st := waitPhase(t, m2, "b", PhaseFailed)
	if st.Phase != PhaseFailed {
		t.Fatalf("phase %s", st.Phase)
	}
}
