package schedrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/weftgrid/weft/scheduler"
)

// CommandVeto runs the configured hook command with the announcement as
// JSON on stdin: exit 0 allows; any other exit vetoes with the first line
// of the output as the reason.
type CommandVeto struct {
	// Command is run with /bin/sh -c.
	Command string
	// Timeout bounds one run (0: none); a hook past it vetoes.
	Timeout time.Duration
}

var _ scheduler.VetoHook = CommandVeto{}

// vetoInput is the JSON the hook reads.
type vetoInput struct {
	Instance     string              `json:"instance_id"`
	Name         string              `json:"name"`
	Requester    string              `json:"requester"`
	RecipeCID    string              `json:"recipe_cid"`
	SoftwareType string              `json:"software_type,omitempty"`
	Resources    scheduler.Resources `json:"resources"`
	Epoch        uint64              `json:"epoch"`
	Labels       map[string]string   `json:"labels,omitempty"`
	MaxPrice     scheduler.Amount    `json:"max_price,omitempty"`
}

// Veto runs the hook.
func (v CommandVeto) Veto(ctx context.Context, a *scheduler.Announcement) (bool, string, error) {
	in, _ := json.Marshal(vetoInput{Instance: string(a.Instance), Name: a.Name, Requester: a.Requester.String(),
		RecipeCID: a.RecipeCID, SoftwareType: a.SoftwareType, Resources: a.Resources, Epoch: a.Epoch,
		Labels: a.Filter.Labels, MaxPrice: a.Filter.MaxPrice})
	if v.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", v.Command)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return true, "", nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		line, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
		if line == "" {
			line = fmt.Sprintf("vetoed by hook (exit %d)", ee.ExitCode())
		}
		return false, line, nil
	}
	if ctx.Err() != nil {
		return false, "veto hook timed out", nil
	}
	return false, "", fmt.Errorf("market: veto hook: %w", err)
}
