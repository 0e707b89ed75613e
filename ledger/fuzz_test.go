package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range pool(f) {
		f.Add(e.Bytes())
	}
	m := newMarket(f, 3)
	f.Add(m.rw.next(f, End{Contract: m.ce.CID(), AtNanos: m.c.StartNanos + 1, State: EndFailed, Reason: "exit status 1"}).Bytes())
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		// Canonical: a decoded entry re-encodes to the same bytes and CID.
		if !bytes.Equal(e.Bytes(), b) || !e.CID().Equals(CIDOf(b)) {
			t.Fatal("decoded entry does not round-trip")
		}
		_ = e.Verify()
		_, _ = e.DecodeBody()
	})
}

func FuzzDecodeHello(f *testing.F) {
	s := setOf(pool(f)...)
	b, _ := marshal(helloMsg{Root: s.Root(), Heads: s.Heads()})
	f.Add(b)
	b, _ = marshal(helloMsg{})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeHello(b)
		if err != nil {
			return
		}
		// Whatever decodes can be answered without panicking.
		_ = s.Missing(m.Heads)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	b, _ := marshal(batchMsg{Entries: rawsOf(pool(f)[:3])})
	f.Add(b)
	b, _ = marshal(batchMsg{Done: true})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeBatch(b)
		if err != nil {
			return
		}
		if len(m.Entries) > MaxBatch {
			t.Fatal("oversized batch accepted")
		}
		verifyParallel(m.Entries, nil, 1)
	})
}

func FuzzReadExport(f *testing.F) {
	es := pool(f)
	var buf bytes.Buffer
	_ = Export(setOf(es[:4]...), &buf)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"weft-ledger-export/v1","entries":0,"root":""}` + "\n"))
	f.Add([]byte("{}\n{\"cid\":1}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _, problems, err := ReadExport(bytes.NewReader(b))
		if err != nil {
			return
		}
		r := Audit(s, AuditOptions{}, problems...)
		if len(problems) > 0 && r.OK {
			t.Fatal("problems while reading but audit ok")
		}
	})
}

func FuzzParseProof(f *testing.F) {
	s := setOf(pool(f)...)
	for _, e := range s.Entries()[:3] {
		p, err := s.Prove(e.CID())
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		_ = jsonEncode(&buf, p)
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		_ = p.Verify()
	})
}

func FuzzCheckpointJSON(f *testing.F) {
	f.Add([]byte(`{"root":"47d0c3a698fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","entries":3}`))
	f.Add([]byte(`{"root":"zz","entries":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Checkpoint
		if json.Unmarshal(b, &c) != nil {
			return
		}
		// Whatever parses re-renders and parses to the same checkpoint.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back Checkpoint
		if err := json.Unmarshal(out, &back); err != nil || !bytes.Equal(back.Root, c.Root) || back.Entries != c.Entries {
			t.Fatalf("round trip %s: %+v %v", out, back, err)
		}
	})
}

// FuzzWireMatchesLibrary checks the hand-written envelope decoder against
// the CBOR library: for any input, decodeWire accepts exactly when the
// library decodes it and re-encodes it to the same bytes, with the same
// field values (nil and empty byte strings told apart).
func FuzzWireMatchesLibrary(f *testing.F) {
	for _, e := range pool(f) {
		f.Add(e.Bytes())
	}
	for _, seed := range [][]byte{{0x87}, {0x80}, {0x87, 0xf6, 0x01, 0xf6, 0x01, 0x00, 0x40, 0x40},
		{0x87, 0x40, 0x18, 0x05, 0xf6, 0x01, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x40, 0x41, 0x00},
		{0x87, 0x40, 0x00, 0x40, 0x18, 0xff, 0x20, 0x40, 0x40}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var lib wireEntry
		libErr := unmarshalCanonical(b, &lib)
		fast, fastErr := decodeWire(b)
		if (libErr == nil) != (fastErr == nil) {
			t.Fatalf("library error %v, decodeWire error %v, input %x", libErr, fastErr, b)
		}
		if libErr != nil {
			return
		}
		same := func(x, y []byte) bool { return bytes.Equal(x, y) && (x == nil) == (y == nil) }
		if !same(lib.Author, fast.Author) || lib.Seq != fast.Seq || !same(lib.Prev, fast.Prev) || lib.Kind != fast.Kind ||
			lib.Time != fast.Time || !same(lib.Body, fast.Body) || !same(lib.Sig, fast.Sig) {
			t.Fatalf("values differ: library %+v, decodeWire %+v", lib, fast)
		}
	})
}
