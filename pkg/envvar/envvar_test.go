package envvar

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two", "E": ""}
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$1"},
		{"$(C)", "$(C)"},
		{"$(A", "$(A"},
		{"$A", "$A"},
		{"cost $5", "cost $5"},
		{"$", "$"},
		{"$()", "$()"},
		{"a$", "a$"},
		{"$$", "$"},
		{"$(E)", ""},
	} {
		if got := Expand(tc.in, vars); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
