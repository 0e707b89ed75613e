package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// notFound adds what to do next to an API "not found" answer: hint is a
// command that lists what exists (e.g. "weft instance list"). Other errors
// pass through unchanged; the *api.Error stays in the chain.
func notFound(err error, what, hint string) error {
	var ae *api.Error
	if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return err
	}
	if strings.Contains(ae.Message, hint) {
		return err
	}
	return fmt.Errorf("%w\n(no such %s here; see what there is with: %s)", err, what, hint)
}

// interrupted is the error of a wait stopped by Ctrl-C: what was asked of
// the grid stays asked, and follow says how to follow it ("instance show
// web"). It wraps the context's error.
func interrupted(ctx context.Context, follow string) error {
	return fmt.Errorf("stopped waiting: %w (what you asked stays asked; follow it with: weft %s)", context.Cause(ctx), follow)
}
