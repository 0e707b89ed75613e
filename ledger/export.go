package ledger

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/ipfs/go-cid"
)

// ExportFormat names the export file format.
const ExportFormat = "weft-ledger-export/v1"

// The export file is JSON lines: a header line
//
//	{"format":"weft-ledger-export/v1","entries":N,"root":"<hex>"}
//
// then one line per entry, ordered by author then seq:
//
//	{"cid":"<CIDv1 base32>","entry":"<base64 of the signed entry bytes>"}
//
// Every record is self-authenticating, and one damaged record does not hide
// the others: an offline audit names each entry whose bytes do not verify.

// ExportHeader is the first line of an export file.
type ExportHeader struct {
	Format  string `json:"format"`
	Entries int    `json:"entries"`
	Root    string `json:"root"`
}

type exportRecord struct {
	CID   string `json:"cid"`
	Entry string `json:"entry"`
}

// maxExportLine bounds one line of an export file.
const maxExportLine = 4*MaxEntrySize/3 + 256

// Export writes every entry of s to w.
func Export(s *Set, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(ExportHeader{Format: ExportFormat, Entries: s.Len(), Root: s.RootHex()}); err != nil {
		return err
	}
	for _, e := range s.Entries() {
		if err := enc.Encode(exportRecord{CID: e.id.String(), Entry: base64.StdEncoding.EncodeToString(e.raw)}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Export writes the whole ledger to w (see the package-level Export).
func (l *Ledger) Export(w io.Writer) error {
	l.mu.Lock()
	es := l.set.Entries()
	hdr := ExportHeader{Format: ExportFormat, Entries: l.set.Len(), Root: l.set.RootHex()}
	l.mu.Unlock()
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(hdr); err != nil {
		return err
	}
	for _, e := range es {
		if err := enc.Encode(exportRecord{CID: e.id.String(), Entry: base64.StdEncoding.EncodeToString(e.raw)}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

var (
	cidInLine   = regexp.MustCompile(`"cid"\s*:\s*"([a-zA-Z0-9]{8,128})"`)
	cidToken    = regexp.MustCompile(`\bbafy[a-z2-7]{40,120}\b`)
	entryInLine = regexp.MustCompile(`"entry"\s*:\s*"([A-Za-z0-9+/=]{16,})"`)
)

// nameDamaged finds the entry a damaged record is about: the CID its entry
// bytes hash to when they still verify, else the CID-looking text it holds.
func nameDamaged(line []byte) string {
	if m := entryInLine.FindSubmatch(line); m != nil {
		if raw, err := base64.StdEncoding.DecodeString(string(m[1])); err == nil {
			if e, err := DecodeVerified(raw); err == nil {
				return e.id.String()
			}
		}
	}
	if m := cidInLine.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	if m := cidToken.Find(line); m != nil {
		return string(m)
	}
	return ""
}

// ReadExport reads an export file, verifying every record. Records that do
// not decode, verify or match their CID become problems naming the entry
// (the CID the record claims, or the CID its bytes hash to when only the
// claim is damaged); the good records form the returned Set. The header's
// root is compared with the root of the good records. err is only for a
// file that is not an export at all.
func ReadExport(r io.Reader) (*Set, ExportHeader, []Problem, error) {
	s := NewSet()
	var hdr ExportHeader
	var problems []Problem
	br := bufio.NewReaderSize(r, 64<<10)
	first := true
	lineNo := 0
	for {
		line, tooLong, err := readLine(br, maxExportLine)
		if err == io.EOF && len(line) == 0 && !tooLong {
			break
		}
		if err != nil && err != io.EOF {
			return nil, hdr, nil, err
		}
		lineNo++
		if first {
			first = false
			if tooLong || json.Unmarshal(line, &hdr) != nil || hdr.Format != ExportFormat {
				return nil, hdr, nil, fmt.Errorf("%w: not a %s file (line 1)", ErrMalformed, ExportFormat)
			}
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 && !tooLong {
			if err == io.EOF {
				break
			}
			continue
		}
		if p, ok := readRecord(s, line, tooLong, lineNo); !ok {
			problems = append(problems, p)
		}
		if err == io.EOF {
			break
		}
	}
	if len(problems) == 0 && hdr.Root != s.RootHex() {
		problems = append(problems, Problem{Code: CodeRootMismatch, Problem: fmt.Sprintf("header root %s ≠ root %s of the %d entries in the file (header says %d)", hdr.Root, s.RootHex(), s.Len(), hdr.Entries)})
	}
	return s, hdr, problems, nil
}

func readRecord(s *Set, line []byte, tooLong bool, lineNo int) (Problem, bool) {
	claimed := ""
	bad := func(code, format string, args ...any) (Problem, bool) {
		if claimed == "" {
			claimed = nameDamaged(line)
		}
		return Problem{CID: claimed, Code: code, Problem: fmt.Sprintf("line %d: ", lineNo) + fmt.Sprintf(format, args...)}, false
	}
	if tooLong {
		return bad(CodeBadEntry, "record longer than %d bytes", maxExportLine)
	}
	var rec exportRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return bad(CodeBadEntry, "record does not parse: %v", err)
	}
	claimed = rec.CID
	raw, err := base64.StdEncoding.DecodeString(rec.Entry)
	if err != nil {
		return bad(CodeBadEntry, "entry is not base64: %v", err)
	}
	e, err := DecodeVerified(raw)
	if err != nil {
		return bad(CodeBadEntry, "entry does not verify: %v", err)
	}
	c, err := cid.Decode(rec.CID)
	if err != nil || !c.Equals(e.id) {
		p, _ := bad(CodeCIDMismatch, "record claims CID %q but its (valid) entry is %s", rec.CID, e.id)
		p.CID, p.Kind, p.Author = e.id.String(), e.Kind.String(), e.Author.String()
		return p, false
	}
	s.Add(e)
	return Problem{}, true
}

// readLine reads one line up to max bytes; a longer line is consumed and
// reported with tooLong.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(line)+len(chunk) > max {
			tooLong = true
		} else {
			line = append(line, chunk...)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return line, tooLong, io.EOF
			}
			return line, tooLong, err
		}
		if !isPrefix {
			return line, tooLong, nil
		}
	}
}

// AuditExport audits an export file offline: every record verified, the
// ledger rules checked, the root recomputed. Unbilled slices are counted as
// of opt.Now or, when it is zero, as of the newest entry's time (the moment
// the export was taken, near enough: an export of a live grid ends with the
// entries its node had written by then).
func AuditExport(r io.Reader, opt AuditOptions) (Report, error) {
	s, _, problems, err := ReadExport(r)
	if err != nil {
		return Report{}, err
	}
	if opt.Now.IsZero() {
		opt.Now = s.Newest()
	}
	return Audit(s, opt, problems...), nil
}
