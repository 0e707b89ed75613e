package ledger

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func exportOf(t *testing.T, s *Set) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Export(s, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestExportRoundTripAndOfflineAudit(t *testing.T) {
	es := pool(t)
	s := setOf(es[:len(es)-1]...) // without the equivocation
	b := exportOf(t, s)
	r, err := AuditExport(bytes.NewReader(b), AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Root != s.RootHex() || r.Entries != s.Len() {
		t.Fatalf("offline audit: ok=%v root=%s entries=%d problems=%+v", r.OK, r.Root, r.Entries, r.Problems)
	}
}

// Changing any one byte of an entry record makes the offline audit fail
// and name that entry.
func TestExportOneByteChangedNamesTheEntry(t *testing.T) {
	es := pool(t)
	s := setOf(es[:len(es)-1]...)
	b := exportOf(t, s)
	lines := bytes.SplitAfter(b, []byte("\n"))
	offset := len(lines[0])
	for li, line := range lines[1:] {
		if len(line) == 0 {
			continue
		}
		var rec exportRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		// Every byte of the record except the newline, stepping to keep the test quick.
		step := max(1, len(line)/40)
		for i := 0; i < len(line)-1; i += step {
			mut := append([]byte(nil), b...)
			mut[offset+i] ^= 0x04
			r, err := AuditExport(bytes.NewReader(mut), AuditOptions{})
			if err != nil {
				t.Fatalf("line %d byte %d: %v", li+2, i, err)
			}
			if r.OK {
				t.Fatalf("line %d byte %d (%q) changed: audit ok", li+2, i, line[i])
			}
			named := false
			for _, p := range r.Problems {
				named = named || p.CID == rec.CID
			}
			if !named && !strings.Contains(string(line[:i+1]), `"cid":"`+rec.CID[:min(len(rec.CID), i)]) {
				t.Fatalf("line %d byte %d changed: problems %+v do not name %s", li+2, i, r.Problems, rec.CID)
			}
		}
		offset += len(line)
	}
	// A deleted line is caught by the header root.
	del := bytes.Join(append(lines[:3:3], lines[4:]...), nil)
	r, err := AuditExport(bytes.NewReader(del), AuditOptions{})
	if err != nil || r.OK {
		t.Fatalf("deleted record: ok=%v err=%v", r.OK, err)
	}
}

func TestInclusionProofs(t *testing.T) {
	es := pool(t)
	s := setOf(es...)
	dir := t.TempDir()
	for i, e := range es {
		p, err := s.Prove(e.CID())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		// Round trip through a file.
		b, _ := json.Marshal(p)
		path := filepath.Join(dir, "p.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		q, err := ReadProof(path)
		if err != nil || q.Verify() != nil {
			t.Fatalf("entry %d from file: %v", i, err)
		}
		// Any change to the path, the root, the index or the entry breaks it.
		bad := *q
		bad.Hashes = append([]string(nil), q.Hashes...)
		if len(bad.Hashes) > 0 {
			bad.Hashes[0] = strings.Repeat("0", 64)
			if bad.Verify() == nil {
				t.Fatalf("entry %d: tampered path verified", i)
			}
		}
		bad = *q
		bad.Root = strings.Repeat("ab", 32)
		if bad.Verify() == nil {
			t.Fatalf("entry %d: wrong root verified", i)
		}
		bad = *q
		bad.Index = (q.Index + 1) % q.Size
		if q.Size > 1 && bad.Verify() == nil {
			t.Fatalf("entry %d: wrong index verified", i)
		}
		bad = *q
		bad.Entry = append([]byte(nil), q.Entry...)
		bad.Entry[len(bad.Entry)-1] ^= 1
		if bad.Verify() == nil {
			t.Fatalf("entry %d: tampered entry verified", i)
		}
	}
	if _, err := s.Prove(CIDOf([]byte("absent"))); err == nil {
		t.Fatal("proof of an absent entry")
	}
}
