package daemon

import (
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

// TestNotifyBeforeStart: subsystems start before the dashboard and may
// notify at once; that must neither panic nor block.
func TestNotifyBeforeStart(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	e, _ := testEnv(t, cfg)
	d := newDashboard(e)
	for _, topic := range dashboard.Topics {
		d.notify(topic)
	}
}
