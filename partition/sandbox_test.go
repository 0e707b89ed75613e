package partition

import (
	"testing"
)

// On this host the probe sees each protection the kernel offers take
// effect; the status says so (and why not, for what it lacks).
func TestSandboxProbe(t *testing.T) {
	m := newTestManager(t, nil)
	st := m.Sandbox()
	t.Logf("sandbox: %+v", st)
	abi := landlockABI()
	if st.LandlockABI != abi || st.FS != (abi > 0) || st.BindPorts != (abi >= 4) || st.ScopedSignals != (abi >= 6) {
		t.Fatalf("Landlock ABI %d, status %+v", abi, st)
	}
	if !st.Rlimits {
		t.Fatalf("rlimits not in force: %v", st.Reasons)
	}
}
