package runtime

import (
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestImageCacheBound(t *testing.T) {
	var c imageCache
	key := func(i int) digest.Digest { return digest.FromString(fmt.Sprint(i)) }
	for i := range imageCacheMax {
		c.put(key(i), imageMeta{chainID: fmt.Sprint(i)})
	}
	if m, ok := c.get(key(7)); !ok || m.chainID != "7" {
		t.Fatalf("entry 7: %+v, %v", m, ok)
	}
	// One more than the bound starts the cache afresh.
	c.put(key(imageCacheMax), imageMeta{chainID: "new"})
	if _, ok := c.get(key(7)); ok {
		t.Error("entry 7 kept past the bound")
	}
	if m, ok := c.get(key(imageCacheMax)); !ok || m.chainID != "new" {
		t.Errorf("newest entry: %+v, %v", m, ok)
	}
	if len(c.m) != 1 {
		t.Errorf("%d entries after the reset, want 1", len(c.m))
	}
}
