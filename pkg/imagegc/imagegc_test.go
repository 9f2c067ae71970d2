package imagegc

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/metrics"
	"github.com/minipod/minipod/pkg/runtime"
)

// fakeStore is containerd's image store and container list.
type fakeStore struct {
	mu      sync.Mutex
	images  []runtime.ImageRecord
	ctrs    []runtime.Container
	deleted []string
	synced  []bool
	fail    map[string]bool
}

func (s *fakeStore) ListImages(context.Context) ([]runtime.ImageRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.images), nil
}

func (s *fakeStore) DeleteImage(_ context.Context, img runtime.ImageRecord, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[img.Name] {
		return errors.New("delete image " + img.Name + ": boom")
	}
	s.deleted = append(s.deleted, img.Name)
	s.synced = append(s.synced, sync)
	s.images = slices.DeleteFunc(s.images, func(r runtime.ImageRecord) bool { return r.Name == img.Name })
	return nil
}

func (s *fakeStore) List(context.Context, map[string]string) ([]runtime.Container, error) {
	return s.ctrs, nil
}

func (s *fakeStore) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, i := range s.images {
		out = append(out, i.Name)
	}
	slices.Sort(out)
	return out
}

// node is a node with these images, 1000 bytes each, updated (pulled) in their order.
func node(names ...string) *fakeStore {
	s := &fakeStore{}
	for i, n := range names {
		id, name, _ := strings.Cut(n, "=") // "ID=name" shares an ID
		if name == "" {
			id, name = "sha256:"+n, n
		}
		s.images = append(s.images, runtime.ImageRecord{Name: name, ID: id, Size: 1000, UpdatedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	return s
}

type fixture struct {
	store   *fakeStore
	c       *Collector
	now     time.Time
	avail   int64
	wanted  map[string][]string
	ready   bool
	rec     *events.Recorder
	metrics *metrics.Metrics
}

// newFixture: a 10000-byte file system with avail bytes free, the kubelet's thresholds and a
// minimum age of 2 minutes.
func newFixture(store *fakeStore, avail int64) *fixture {
	f := &fixture{store: store, now: t0.Add(time.Hour), avail: avail, ready: true, wanted: map[string][]string{},
		rec: events.NewRecorder(10), metrics: metrics.New()}
	f.rec.SetHost("node1")
	f.c = New(Config{
		Store:     store,
		Policy:    DefaultPolicy,
		FS:        func() (int64, int64, error) { return 10000, f.avail, nil },
		InUse:     func() (map[string][]string, bool) { return f.wanted, f.ready },
		Protected: []string{"minipod.local/pause:3.10"},
		Events:    f.rec,
		Metrics:   f.metrics,
		Now:       func() time.Time { return f.now },
	})
	return f
}

func TestCollect(t *testing.T) {
	store := node("minipod.local/pause:3.10", "docker.io/library/busybox:1.36", "old:1", "old:2", "used-by-ctr:1", "pinned:1",
		"sha256:shared=shared:a", "sha256:shared=shared:b", "fresh:1")
	store.images[5].Pinned = true
	store.ctrs = []runtime.Container{{ID: "c1", Image: "used-by-ctr:1", Labels: map[string]string{runtime.LabelPodNamespace: "default", runtime.LabelPodName: "web"}}}
	f := newFixture(store, 1000) // 90% used: free 1000 to get to 80%
	f.wanted["busybox:1.36"] = []string{"default/app"}
	f.wanted["shared:b"] = []string{"default/api"}

	// First detection: nothing is 2 minutes old yet.
	if err := f.c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "freed 0 bytes") {
		t.Fatalf("first collection: err = %v, want FreeDiskSpaceFailed for too young images", err)
	}
	f.now = f.now.Add(3 * time.Minute)
	store.images = append(store.images, runtime.ImageRecord{Name: "fresh:2", ID: "sha256:fresh2", Size: 1000, UpdatedAt: f.now})
	if err := f.c.Collect(context.Background()); err != nil {
		t.Fatalf("collect: %v", err)
	}
	// old:1 was stored first: it goes, and is enough (1000 bytes).
	if !slices.Equal(store.deleted, []string{"old:1"}) || !slices.Equal(store.synced, []bool{true}) {
		t.Fatalf("deleted %v (sync %v), want [old:1] synchronously", store.deleted, store.synced)
	}
	// Now 100% full: 2000 bytes to free, the two unused images old enough, oldest first;
	// fresh:2 is too young.
	f.avail = 0
	store.deleted, store.synced = nil, nil
	if err := f.c.Collect(context.Background()); err != nil {
		t.Fatalf("collect: %v", err)
	}
	if want := []string{"old:2", "fresh:1"}; !slices.Equal(store.deleted, want) {
		t.Fatalf("deleted %v, want %v", store.deleted, want)
	}
	if !slices.Equal(store.synced, []bool{false, true}) {
		t.Errorf("sync %v: want only the last delete to wait for containerd's collection", store.synced)
	}
	// Still full, and nothing left that may go.
	store.deleted = nil
	err := f.c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Insufficient free disk space") || store.deleted != nil {
		t.Errorf("err = %v, deleted %v; want FreeDiskSpaceFailed, nothing deleted", err, store.deleted)
	}
	if want := []string{"docker.io/library/busybox:1.36", "fresh:2", "minipod.local/pause:3.10", "pinned:1", "shared:a", "shared:b", "used-by-ctr:1"}; !slices.Equal(store.names(), want) {
		t.Errorf("left %v, want %v", store.names(), want)
	}
	evs := f.rec.List("", "node1")
	if len(evs) == 0 || evs[len(evs)-1].Reason != ReasonFreeDiskSpaceFailed || evs[len(evs)-1].Kind != events.KindNode || evs[len(evs)-1].Type != events.Warning {
		t.Errorf("events %+v, want a Warning FreeDiskSpaceFailed about the node", evs)
	}

	// What the manifests name stops being named: it goes, with every name of its image.
	delete(f.wanted, "shared:b")
	f.avail = 5000
	store.deleted = nil
	if err := f.c.Collect(context.Background()); err != nil || store.deleted != nil {
		t.Fatalf("below the high threshold: deleted %v, err %v", store.deleted, err)
	}
	f.avail = 0
	_ = f.c.Collect(context.Background())
	if !slices.Contains(store.deleted, "shared:a") || !slices.Contains(store.deleted, "shared:b") {
		t.Errorf("deleted %v, want both names of the image no manifest names any more", store.deleted)
	}
}

// Until the manifests are read, nothing goes: an image they name could look unused.
func TestCollectNotReady(t *testing.T) {
	store := node("a:1", "b:1")
	f := newFixture(store, 0)
	f.ready = false
	f.c.cfg.Policy.MinAge = 0
	if err := f.c.Collect(context.Background()); !errors.Is(err, errNotReady) || store.deleted != nil {
		t.Fatalf("deleted %v, err %v; want nothing before the desired set", store.deleted, err)
	}
	if _, err := f.c.Prune(context.Background()); err == nil || store.deleted != nil {
		t.Fatalf("prune before the desired set: deleted %v, err %v", store.deleted, err)
	}
	imgs, err := f.c.List(context.Background())
	if err != nil || len(imgs) != 2 {
		t.Fatalf("list before the desired set: %v, %v", imgs, err)
	}
}

// Prune removes every unused image whatever the thresholds and the minimum age, and lists
// what it removed; List says which pods use the rest and since when.
func TestPruneAndList(t *testing.T) {
	store := node("minipod.local/pause:3.10", "app:1", "app:2", "pinned:1", "tool:1")
	store.images[3].Pinned = true
	f := newFixture(store, 9000) // 10% used
	f.wanted["app:2"] = []string{"default/app", "prod/app"}
	f.wanted["minipod.local/app:1"] = []string{"default/other"} // another image: app:1 stays unused
	store.ctrs = []runtime.Container{{ID: "x", Image: "tool:1"}}
	got, err := f.c.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ids(got.Removed)[0] != "sha256:app:1" || len(got.Removed) != 1 || got.Freed != 1000 {
		t.Fatalf("pruned %+v, want app:1 alone", got)
	}
	rec := httptest.NewRecorder()
	f.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `minipod_image_garbage_collected_total{reason="prune"} 1`; !strings.Contains(rec.Body.String(), want+"\n") {
		t.Errorf("metrics lack %s", want)
	}
	imgs, err := f.c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Image{}
	for _, img := range imgs {
		byName[img.Names[0]] = img
	}
	if img := byName["app:2"]; !img.InUse || !slices.Equal(img.Pods, []string{"default/app", "prod/app"}) || !img.LastUsed.Equal(f.now) {
		t.Errorf("app:2: %+v, want in use by two pods, last used now", img)
	}
	if img := byName["tool:1"]; !img.InUse || len(img.Pods) != 0 {
		t.Errorf("tool:1 (a container outside any pod): %+v, want in use", img)
	}
	if img := byName["pinned:1"]; img.Keep() != "pinned" {
		t.Errorf("pinned:1: keep %q", img.Keep())
	}
	if img := byName["minipod.local/pause:3.10"]; img.Keep() != "pause image" {
		t.Errorf("pause: keep %q", img.Keep())
	}
}

// A deletion that fails leaves the image listed and is reported; the others still go, and a
// second failure in a row is an ImageGCFailed event.
func TestCollectDeleteFails(t *testing.T) {
	store := node("a:1", "b:1")
	store.fail = map[string]bool{"a:1": true}
	f := newFixture(store, 0)
	f.c.cfg.Policy.MinAge = 0
	f.c.periodic(context.Background())
	if !slices.Equal(store.deleted, []string{"b:1"}) {
		t.Fatalf("deleted %v, want b:1", store.deleted)
	}
	if evs := f.rec.List("", ""); slices.ContainsFunc(evs, func(e events.Event) bool { return e.Reason == ReasonImageGCFailed }) {
		t.Fatalf("ImageGCFailed after one failure: %+v", evs)
	}
	f.c.periodic(context.Background())
	if evs := f.rec.List("", ""); !slices.ContainsFunc(evs, func(e events.Event) bool { return e.Reason == ReasonImageGCFailed }) {
		t.Fatalf("no ImageGCFailed after two failures in a row: %+v", evs)
	}
}

// Run checks at once and at each Kick, and returns when its context ends.
func TestRunKick(t *testing.T) {
	store := node("a:1")
	f := newFixture(store, 0)
	f.c.cfg.Policy.MinAge = 0
	f.c.cfg.Period = time.Hour
	f.ready = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.c.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(store.names()) > 0 && time.Now().Before(deadline) {
		f.c.mu.Lock()
		f.ready = true // read by detect under the same lock
		f.c.mu.Unlock()
		f.c.Kick()
		time.Sleep(10 * time.Millisecond)
	}
	if n := store.names(); len(n) > 0 {
		t.Fatalf("images left after a kick: %v", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// References find the names containerd has: as written, normalised, or by digest.
func TestLookup(t *testing.T) {
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	byName := map[string]*runtime.ImageRecord{
		"docker.io/library/busybox:1.36": {ID: "sha256:aaaa"},
		"registry.local/app:1":           {ID: dgst},
		"registry.local/other:1":         {ID: dgst},
	}
	for ref, want := range map[string]string{
		"docker.io/library/busybox:1.36": "docker.io/library/busybox:1.36",
		"busybox:1.36":                   "docker.io/library/busybox:1.36",
		"busybox:1.37":                   "",
		"registry.local/app@" + dgst:     "registry.local/app:1",
		"registry.local/app:2@" + dgst:   "registry.local/app:1",
		"registry.local/third@" + dgst:   "",
		"not a reference":                "",
	} {
		if got := lookup(byName, ref); got != want {
			t.Errorf("lookup(%q) = %q, want %q", ref, got, want)
		}
	}
}
