package cli

import "testing"

func TestStatusValue(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{float64(3), "3"},
		{nil, "-"},
		{map[string]any{"total": float64(2), "free": float64(1)}, "free=1 total=2"},
		{map[string]any{"free": float64(1), "limits": map[string]any{"summary": "nothing enforced", "cpu": false}}, "free=1"},
		{map[string]any{"a": map[string]any{"b": "c"}, "l": []any{"x", "y"}}, "a={b=c} l=x, y"},
	}
	for _, c := range cases {
		if got := statusValue(c.in); got != c.want {
			t.Errorf("statusValue(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
