package scheduler

import (
	"errors"
	"testing"
)

func TestDirStore(t *testing.T) {
	s, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put("r-abc", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("r-abc", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("h-def", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("h-def"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("missing"); err != nil {
		t.Fatal(err)
	}
	all, err := s.Load()
	if err != nil || len(all) != 1 || string(all["r-abc"]) != "two" {
		t.Fatalf("load %v %q", err, all)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if err := s.Put(bad, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("key %q: %v", bad, err)
		}
	}
}
