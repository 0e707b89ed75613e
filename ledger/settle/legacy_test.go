package settle

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftgrid/weft/ledger"
)

// The fixtures in testdata were written by weft 375b51f, the version
// before end entries, caps in contracts and the slice in awards: a
// three-node `weft demo` (a web server placed, its host killed and the
// server placed again, a batch job), then `weft ledger export` on the
// requester and the ledger file of the second host after a clean stop.
// That version audited both clean, with the roots below.
const (
	legacyDBRoot     = "cc49ff6ea2b019e9118b395b91fa7f30f871b88d48a63d8d01de1da08e33a20c"
	legacyExportRoot = "5c36eda889756255fd9e9f9b5a6ab4ee0b76cb65d82163003aed4fe620f84170"
)

// A ledger file written by the previous version opens, holds the same
// entries (same root), and audits clean: its contracts, recorded without
// caps under awards that state no slice, are agreed.
func TestLegacyLedgerFileLoadsAndAudits(t *testing.T) {
	gz, err := os.ReadFile(filepath.Join("testdata", "v375b51f-ledger.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	l, err := ledger.Open(ledger.Config{Path: path, ReadOnly: true, ContractCheck: CheckContract,
		Now: func() time.Time { return newest }})
	if err != nil {
		t.Fatalf("a ledger file of the previous version does not open: %v", err)
	}
	defer l.Close()
	l.View(func(s *ledger.Set) { newest = s.Newest() })
	r := l.Audit()
	if r.Root != legacyDBRoot || r.Entries != 57 || r.Contracts != 5 || r.Receipts != 24 || r.Acked != 24 || r.AckedAmount != 90272 {
		t.Errorf("root %s, %d entries, %d contracts, %d receipts, %d acked (%d pcr); the previous version saw %s, 57, 5, 24, 24 (90272 pcr)",
			r.Root, r.Entries, r.Contracts, r.Receipts, r.Acked, r.AckedAmount, legacyDBRoot)
	}
	if !r.OK || len(r.Problems) > 0 {
		t.Errorf("the previous version's ledger does not audit clean: %+v", r.Problems)
	}
	t.Logf("unbilled at its newest entry: %d slices (that version wrote no end entries)", r.Unbilled)
}

// An export file written by the previous version audits clean offline.
func TestLegacyExportAudits(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "v375b51f.export"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ledger.AuditExport(f, ledger.AuditOptions{ContractCheck: CheckContract})
	if err != nil {
		t.Fatal(err)
	}
	if r.Root != legacyExportRoot || r.Entries != 41 || r.Receipts != 16 || r.AckedAmount != 60224 {
		t.Errorf("root %s, %d entries, %d receipts (%d pcr acked); the previous version saw %s, 41, 16 (60224)", r.Root, r.Entries, r.Receipts, r.AckedAmount, legacyExportRoot)
	}
	if !r.OK || len(r.Problems) > 0 {
		t.Errorf("the previous version's export does not audit clean: %+v", r.Problems)
	}
}
