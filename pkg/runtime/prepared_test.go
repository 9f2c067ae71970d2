package runtime

import (
	"slices"
	"testing"
)

func TestPreparedKeys(t *testing.T) {
	var p preparedKeys
	if got := p.withPrefix("a-"); len(got) != 0 {
		t.Fatalf("empty set gave %v", got)
	}
	for _, k := range []string{"a-app-0", "a-pause", "ab-app-0", "b-app-0"} {
		p.add(k)
	}
	p.add("a-app-0") // twice is once
	got := p.withPrefix("a-")
	slices.Sort(got)
	if want := []string{"a-app-0", "a-pause"}; !slices.Equal(got, want) {
		t.Fatalf("withPrefix(a-) = %v, want %v", got, want)
	}
	p.remove("a-pause")
	p.remove("never-added")
	if got, want := p.withPrefix("a-"), []string{"a-app-0"}; !slices.Equal(got, want) {
		t.Fatalf("after remove: %v, want %v", got, want)
	}
	if got := p.withPrefix("c-"); len(got) != 0 {
		t.Fatalf("withPrefix(c-) = %v", got)
	}
}
