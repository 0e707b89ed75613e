package partition

import (
	"testing"

	"github.com/weftgrid/weft/recipes"
)

// BenchmarkOpenSandbox is the cost of one run's sandbox: a thread, the
// Landlock ruleset, as root the namespaces and their mounts, seccomp.
func BenchmarkOpenSandbox(b *testing.B) {
	cfg := testConfig(b.TempDir())
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if err := m.ensureLayout(); err != nil {
		b.Fatal(err)
	}
	if err := m.preparePartition(0, recipes.Resources{}); err != nil {
		b.Fatal(err)
	}
	spec := m.runSandboxSpec(0, "", account{}, 0)
	for _, v := range []struct {
		name string
		spec sandboxSpec
	}{{"full", spec}, {"landlock-only", func() sandboxSpec { s := spec; s.Mounts = false; return s }()},
		{"mounts-only", func() sandboxSpec { s := spec; s.ABI = 0; return s }()}} {
		b.Run(v.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sb, err := openSandbox(v.spec)
				if err != nil {
					b.Fatal(err)
				}
				sb.close()
			}
		})
	}
}
