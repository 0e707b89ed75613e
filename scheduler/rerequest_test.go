package scheduler

import (
	"maps"
	"testing"
)

func TestReuseParams(t *testing.T) {
	prev := map[string]string{"message": "old", "size": "3", "gone": "x"}
	declared := func(k string) bool { return k != "gone" }
	got := ReuseParams(prev, map[string]string{"message": "new"}, declared)
	if want := map[string]string{"message": "new", "size": "3"}; !maps.Equal(got, want) {
		t.Fatalf("ReuseParams = %v, want %v", got, want)
	}
	if got := ReuseParams(nil, nil, declared); got != nil {
		t.Fatalf("nothing to reuse: %v", got)
	}
	if prev["message"] != "old" {
		t.Fatal("ReuseParams changed the previous request's parameters")
	}
}
