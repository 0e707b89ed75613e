package dashboard_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

// FuzzFingerprint: any body is accepted; a JSON body's fingerprint is
// canonical (fingerprinting it again changes nothing) and no longer holds
// the ignored key.
func FuzzFingerprint(f *testing.F) {
	for _, seed := range []string{
		`{"peer_id":"a","rtt_ms":1.5,"advert":{"rtt_ms":2}}`,
		`[{"rtt_ms":1},{"x":[{"rtt_ms":3}]}]`,
		`{"a":1e400}`, `"rtt_ms"`, `null`, `{`, ``, `{"rtt_ms":{"rtt_ms":1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fp := dashboard.Fingerprint(body, "rtt_ms")
		var v any
		if json.Unmarshal(body, &v) != nil {
			if !bytes.Equal(fp, body) {
				t.Fatalf("non-JSON body changed: %q -> %q", body, fp)
			}
			return
		}
		if again := dashboard.Fingerprint(fp, "rtt_ms"); !bytes.Equal(again, fp) {
			t.Fatalf("not canonical: %q -> %q -> %q", body, fp, again)
		}
		if bytes.Contains(fp, []byte(`"rtt_ms":`)) {
			t.Fatalf("ignored key kept: %q -> %q", body, fp)
		}
	})
}
