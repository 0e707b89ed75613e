package demo

import (
	"encoding/json"
	"testing"
)

// FuzzNodeOutputs feeds arbitrary bytes to the checks that read what nodes
// print (statements, audits, auctions): they must reject or accept without
// panicking.
func FuzzNodeOutputs(f *testing.F) {
	for _, s := range []string{
		`{"party":"P","lines":[{"instance_id":"i","provider":"h","status":"acked"}],"total":{"receipts":1}}`,
		`{"ok":true,"entries":3,"receipts":1,"root":"ab","problems":[]}`,
		`[{"request":"web","instance_id":"i","bids":[{"node":"A","price":1,"rtt_ms":2}],"winner":"A"}]`,
		`null`, `{}`, `[`, `{"total":{"receipts":-1},"lines":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = checkStatement(b)
		var a auditReport
		if json.Unmarshal(b, &a) == nil {
			_, _ = rootsAgree([]string{"n0", "n1"}, []auditReport{a, a})
		}
		var as []auction
		if json.Unmarshal(b, &as) == nil {
			if au, ok := findAuction(as, "i", "web"); ok {
				_ = checkAuction(au, "A")
			}
		}
		var st struct {
			Lines []statementLine `json:"lines"`
		}
		if json.Unmarshal(b, &st) == nil {
			_, _ = hostReceipts(st.Lines, "i", "h")
		}
	})
}
