package api

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeImages struct {
	list   []Image
	pruned Pruned
	err    error
}

func (f *fakeImages) Images(context.Context) ([]Image, error)     { return f.list, f.err }
func (f *fakeImages) PruneImages(context.Context) (Pruned, error) { return f.pruned, f.err }

func TestImagesRoutes(t *testing.T) {
	used := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	imgs := &fakeImages{
		list:   []Image{{ID: "sha256:a", Names: []string{"app:1"}, Size: 10, Pods: []string{"default/web"}, InUse: true, Keep: "in use", FirstDetected: used, LastUsed: &used}},
		pruned: Pruned{Removed: []Image{{ID: "sha256:b", Names: []string{"old:1"}, Size: 5, Pods: []string{}}}, Freed: 5},
	}
	sock := filepath.Join(t.TempDir(), "minipod.sock")
	srv := NewServer(&fakeStore{}, &fakeRuntime{}, nil)
	srv.SetImages(imgs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock, 0, -1) }()
	defer func() { cancel(); <-done }()
	waitForSocket(t, sock)
	c := &Client{Socket: sock}

	list, err := c.Images(context.Background())
	if err != nil || len(list.Items) != 1 || list.Items[0].Names[0] != "app:1" || !list.Items[0].LastUsed.Equal(used) {
		t.Fatalf("Images: %+v, %v", list, err)
	}
	raw := rawGet(t, sock, "/v1/images")
	for _, want := range []string{`"items":[{`, `"id":"sha256:a"`, `"names":["app:1"]`, `"size":10`, `"pods":["default/web"]`, `"inUse":true`, `"pinned":false`, `"keep":"in use"`, `"lastUsed":"2026-12-06T12:00:00Z"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("GET /v1/images lacks %s: %s", want, raw)
		}
	}
	out, err := c.PruneImages(context.Background())
	if err != nil || out.Freed != 5 || len(out.Removed) != 1 {
		t.Fatalf("PruneImages: %+v, %v", out, err)
	}
	if code, _ := rawRequest(t, sock, http.MethodGet, "/v1/images/prune", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/images/prune: %d, want 405", code)
	}
	// Nothing to list: an empty list, never null.
	imgs.list = nil
	if raw := rawGet(t, sock, "/v1/images"); strings.TrimSpace(raw) != `{"items":[]}` {
		t.Errorf("empty list: %s", raw)
	}
	imgs.err = errors.New("the daemon has not read the manifests yet")
	if _, err := c.PruneImages(context.Background()); err == nil || !strings.Contains(err.Error(), "not read the manifests") {
		t.Errorf("prune error: %v", err)
	}
}
