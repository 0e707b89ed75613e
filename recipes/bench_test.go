package recipes

import (
	"os"
	"testing"
)

// BenchmarkParse parses, normalizes and checks the site example (the
// largest), templates included.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("examples/site.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("site.toml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCID is the canonical encoding and its sha2-256 CID.
func BenchmarkCID(b *testing.B) {
	r := mustParseFile(b, "examples/site.toml")
	for b.Loop() {
		_ = r.CID()
	}
}

// BenchmarkValidateParams checks a request's parameters against the schema.
func BenchmarkValidateParams(b *testing.B) {
	r := mustParseFile(b, "examples/site.toml")
	in := map[string]string{"title": "Notes", "beat": "3"}
	for b.Loop() {
		if _, err := r.ValidateParams("", in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCanonical decodes and checks a recipe fetched by CID.
func BenchmarkDecodeCanonical(b *testing.B) {
	data := mustParseFile(b, "examples/site.toml").Canonical()
	for b.Loop() {
		if _, err := DecodeCanonical(data); err != nil {
			b.Fatal(err)
		}
	}
}
