package recipes

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("examples/*.toml")
	for _, fn := range files {
		b, _ := os.ReadFile(fn)
		f.Add(b)
	}
	f.Add([]byte(webA))
	f.Add([]byte(webB))
	f.Add([]byte("a = [ { b = 1 }, [ \"x\" ] ]\n[[c]]\nd = '''\n'''"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		// A valid recipe survives its canonical encoding unchanged.
		back, err := DecodeCanonical(r.Canonical())
		if err != nil {
			t.Fatalf("canonical form of a valid recipe does not decode: %v", err)
		}
		if back.CID() != r.CID() {
			t.Fatal("CID changed through canonical decoding")
		}
	})
}

func FuzzDecodeCanonical(f *testing.F) {
	files, _ := filepath.Glob("examples/*.toml")
	for _, fn := range files {
		b, _ := os.ReadFile(fn)
		if r, err := Parse(fn, b); err == nil {
			f.Add(r.Canonical())
		}
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeCanonical(data)
		if err != nil {
			return
		}
		if string(r.Canonical()) != string(data) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}
