package marketapi

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/recipes/examples"
)

// weft job run --type server on textstats (default type "job", batch) is
// refused, and the error names the type asked for, not the default one
// (it used to say: software type "job" ... is not a batch job).
func TestJobRunWithAServiceTypeNamesThatType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := simnetHandlers(t, 7, 1)
		toml, err := fs.ReadFile(examples.FS, "textstats.toml")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(api.Request{Name: "stats", RecipeTOML: string(toml), Type: "server", Params: map[string]string{"text": "x"}})
		w := httptest.NewRecorder()
		h.HandleJobRun(w, httptest.NewRequest(http.MethodPost, "/v1/jobs", bytes.NewReader(b)))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("HTTP %d, want 400: %s", w.Code, w.Body)
		}
		if body := w.Body.String(); !strings.Contains(body, `type \"server\"`) || strings.Contains(body, `type \"job\"`) {
			t.Fatalf("the error does not name the type asked for (server): %s", body)
		}
		if _, err := h.Market.Instance("stats"); err == nil {
			t.Fatal("a service type was requested as a job")
		}
	})
}
