// Package imagegc removes unused images before the disk fills, as the kubelet's image garbage
// collection does, knowing which images the manifests name.
//
// Every Period (5 minutes) and after each pull (Kick), a Collector looks at the file system
// holding containerd's content. When its usage is at or above the high threshold it removes
// unused images, least recently used first, none detected less than the minimum age ago,
// until what it removed brings usage below the low threshold. Never removed: an image the
// manifests name (InUse: the manager's desired pods, and whatever else the manager keeps),
// an image a container was created from, the pause image and pinned (imported) images.
//
// Lifecycle: New, then Run in a goroutine of its own until its context ends. List and Prune
// may be called from any goroutine at any time; they wait for a collection in progress.
package imagegc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/distribution/reference"
	"golang.org/x/sys/unix"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/metrics"
	"github.com/minipod/minipod/pkg/runtime"
)

// DefaultPeriod is how often usage is checked without a pull: the kubelet's ImageGCPeriod.
const DefaultPeriod = 5 * time.Minute

// Event reasons, as the kubelet names them.
const (
	// ReasonFreeDiskSpaceFailed: collection could not bring usage down to the low threshold.
	ReasonFreeDiskSpaceFailed = "FreeDiskSpaceFailed"
	// ReasonImageGCFailed: collection failed twice in a row.
	ReasonImageGCFailed = "ImageGCFailed"
)

// Store is what the collector needs from containerd.
type Store interface {
	ListImages(ctx context.Context) ([]runtime.ImageRecord, error)
	DeleteImage(ctx context.Context, img runtime.ImageRecord, sync bool) error
	List(ctx context.Context, labels map[string]string) ([]runtime.Container, error)
}

// Config of a Collector.
type Config struct {
	Store  Store
	Policy Policy
	// Period between checks; 0 means DefaultPeriod.
	Period time.Duration
	// FS reports the capacity and available bytes of the file system holding the images;
	// nil means StatFS(Root).
	FS func() (capacity, available int64, err error)
	// Root is a directory on the file system holding containerd's content (used when FS is nil).
	Root string
	// InUse returns the images that must stay, as references (as manifests write them), each
	// with the pods (namespace/name) that want it; ok is false while that is not known yet
	// (before the first desired set), and nothing is collected then. Called at each check.
	InUse func() (refs map[string][]string, ok bool)
	// Protected names images never collected (the pause image).
	Protected []string
	// Events and Metrics may be nil.
	Events  *events.Recorder
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Collector removes unused images. Create it with New.
type Collector struct {
	cfg  Config
	kick chan struct{}

	mu      sync.Mutex // one check, list or prune at a time; guards records
	records map[string]*record
	failed  bool // the last periodic collection failed
}

// record is what the collector remembers of an image (by target digest), as the kubelet does.
type record struct {
	firstDetected, lastUsed time.Time
}

// New returns a Collector; nothing runs until Run.
func New(cfg Config) *Collector {
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FS == nil {
		root := cfg.Root
		cfg.FS = func() (int64, int64, error) { return StatFS(root) }
	}
	return &Collector{cfg: cfg, kick: make(chan struct{}, 1), records: map[string]*record{}}
}

// StatFS returns the capacity and the bytes available to unprivileged users of the file
// system holding path, as the kubelet's image file system stats count them.
func StatFS(path string) (capacity, available int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), nil
}

// Kick asks for a check now (after a pull). It never blocks.
func (c *Collector) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run checks usage at once, then every Period and at each Kick, until ctx ends. It returns nil
// then.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Period)
	defer t.Stop()
	for {
		c.periodic(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.kick:
		}
	}
}

// periodic runs one collection and reports its failure as the kubelet does: in the log, and
// as an ImageGCFailed event from the second failure in a row.
func (c *Collector) periodic(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Period)
	defer cancel()
	err := c.Collect(cctx)
	c.mu.Lock()
	prev := c.failed
	c.failed = err != nil
	c.mu.Unlock()
	switch {
	case err == nil || errors.Is(err, errNotReady) || ctx.Err() != nil: // nothing, or shutting down
	case prev:
		c.cfg.Log.Error("image garbage collection failed again", "err", err)
		c.cfg.Events.EmitNode(events.Warning, ReasonImageGCFailed, err.Error())
	default:
		c.cfg.Log.Warn("image garbage collection failed", "err", err)
	}
}

// errNotReady: the images in use are not known yet.
var errNotReady = errors.New("images in use not known yet")

// Collect checks the image file system once and, above the high threshold, removes unused
// images until usage would be below the low threshold. When the images it may remove are not
// enough, it records a FreeDiskSpaceFailed event and returns an error.
func (c *Collector) Collect(ctx context.Context) error {
	if c.cfg.Policy.HighThresholdPercent >= 100 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	imgs, byName, err := c.detect(ctx, now)
	if err != nil {
		return err
	}
	capacity, available, err := c.cfg.FS()
	if err != nil {
		return err
	}
	if capacity <= 0 {
		return errors.New("invalid capacity 0 on image filesystem")
	}
	percent, toFree, over := Usage(capacity, available, c.cfg.Policy)
	if !over {
		c.cfg.Log.Debug("image file system below the high threshold", "usage", percent)
		return nil
	}
	c.cfg.Log.Info("image file system over the high threshold, freeing space", "usage", percent,
		"high", c.cfg.Policy.HighThresholdPercent, "low", c.cfg.Policy.LowThresholdPercent, "bytes", toFree)
	picked, _ := Select(EvictionOrder(imgs), now, c.cfg.Policy.MinAge, toFree)
	freed, err := c.remove(ctx, picked, byName, metrics.GCReasonSpace)
	if err != nil {
		return fmt.Errorf("wanted to free %d bytes, but freed %d bytes with errors in image deletion: %w", toFree, freed, err)
	}
	if freed < toFree {
		msg := fmt.Sprintf("Insufficient free disk space on the node's image filesystem (%d%% of %s used). "+
			"Failed to free sufficient space by deleting unused images (freed %d bytes). "+
			"Investigate disk usage, as it could be used by active images, logs, volumes, or other data.",
			percent, runtime.FormatBytes(capacity), freed)
		c.cfg.Events.EmitNode(events.Warning, ReasonFreeDiskSpaceFailed, msg)
		return errors.New(msg)
	}
	return nil
}

// Pruned is what Prune did.
type Pruned struct {
	Removed []Image
	// Freed is the sum of the removed images' sizes. As in the kubelet's accounting, it counts
	// layers shared with images that stay, which containerd keeps.
	Freed int64
}

// Prune removes every image that is not in use, pinned or protected, now, whatever the
// thresholds and the minimum age.
func (c *Collector) Prune(ctx context.Context) (Pruned, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	imgs, byName, err := c.detect(ctx, now)
	if errors.Is(err, errNotReady) {
		return Pruned{}, errors.New("the daemon has not read the manifests yet: try again in a moment")
	}
	if err != nil {
		return Pruned{}, err
	}
	picked, _ := Select(EvictionOrder(imgs), now, 0, -1)
	freed, err := c.remove(ctx, picked, byName, metrics.GCReasonPrune)
	out := Pruned{Removed: []Image{}}
	for _, img := range picked {
		if !slices.ContainsFunc(img.Names, func(n string) bool { return byName[n] != nil }) {
			out.Removed = append(out.Removed, img)
		}
	}
	out.Freed = freed
	return out, err
}

// List returns every image with what the collector knows of it, sorted by first name.
func (c *Collector) List(ctx context.Context) ([]Image, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	imgs, _, err := c.detect(ctx, c.cfg.Now())
	if errors.Is(err, errNotReady) {
		err = nil // listed without pods from manifests
	}
	return imgs, err
}

// remove deletes the images' names; the last delete waits for containerd's garbage
// collection, so that the space is free when it returns. It returns the bytes freed (the
// sizes of the images all of whose names went) and the errors; names removed are dropped from
// byName.
func (c *Collector) remove(ctx context.Context, imgs []Image, byName map[string]*runtime.ImageRecord, reason string) (int64, error) {
	var freed int64
	var errs []error
	for i, img := range imgs {
		ok := true
		for j, name := range img.Names {
			rec := byName[name]
			if rec == nil {
				continue
			}
			last := i == len(imgs)-1 && j == len(img.Names)-1
			c.cfg.Log.Info("removing image", "image", name, "id", img.ID, "size", img.Size, "reason", reason)
			if err := c.cfg.Store.DeleteImage(ctx, *rec, last); err != nil {
				errs = append(errs, err)
				ok = false
				continue
			}
			delete(byName, name)
		}
		if ok {
			freed += img.Size
			delete(c.records, img.ID)
			c.cfg.Metrics.ImageGarbageCollected(reason)
		}
	}
	return freed, errors.Join(errs...)
}

// detect lists images and containers, updates the records (first detected, last used) and
// returns the images grouped by target with what uses them, and the listed records by name.
// Without the images in use (before the first desired set) it returns the images with the
// containers' use only, and errNotReady.
func (c *Collector) detect(ctx context.Context, now time.Time) ([]Image, map[string]*runtime.ImageRecord, error) {
	recs, err := c.cfg.Store.ListImages(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctrs, err := c.cfg.Store.List(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	var wanted map[string][]string
	ready := true
	if c.cfg.InUse != nil {
		wanted, ready = c.cfg.InUse()
	}
	byName := make(map[string]*runtime.ImageRecord, len(recs))
	for i := range recs {
		byName[recs[i].Name] = &recs[i]
	}
	// Pods by image name: those whose manifests name it, those whose containers use it.
	pods := map[string]map[string]bool{}
	inUse := map[string]bool{}
	use := func(ref, pod string) {
		name := lookup(byName, ref)
		if name == "" {
			return
		}
		inUse[name] = true
		if pod != "" {
			if pods[name] == nil {
				pods[name] = map[string]bool{}
			}
			pods[name][pod] = true
		}
	}
	for ref, ps := range wanted {
		use(ref, "")
		for _, p := range ps {
			use(ref, p)
		}
	}
	for _, ct := range ctrs {
		pod := ""
		if n := ct.Labels[runtime.LabelPodName]; n != "" {
			pod = ct.Labels[runtime.LabelPodNamespace] + "/" + n
		}
		use(ct.Image, pod)
	}
	protected := map[string]bool{}
	for _, ref := range c.cfg.Protected {
		if name := lookup(byName, ref); name != "" {
			protected[name] = true
		}
	}

	byID := map[string]*Image{}
	var ids []string
	for _, r := range recs {
		img := byID[r.ID]
		if img == nil {
			img = &Image{ID: r.ID, Size: r.Size}
			byID[r.ID] = img
			ids = append(ids, r.ID)
		}
		img.Names = append(img.Names, r.Name)
		img.Size = max(img.Size, r.Size)
		img.Pinned = img.Pinned || r.Pinned
		img.Protected = img.Protected || protected[r.Name]
		img.InUse = img.InUse || inUse[r.Name]
		if r.UpdatedAt.After(img.Updated) {
			img.Updated = r.UpdatedAt
		}
		for p := range pods[r.Name] {
			if !slices.Contains(img.Pods, p) {
				img.Pods = append(img.Pods, p)
			}
		}
	}
	out := make([]Image, 0, len(ids))
	for _, id := range ids {
		img := byID[id]
		rec := c.records[id]
		if rec == nil {
			rec = &record{firstDetected: now}
			c.records[id] = rec
		}
		if img.InUse {
			rec.lastUsed = now
		}
		img.FirstDetected, img.LastUsed = rec.firstDetected, rec.lastUsed
		sort.Strings(img.Names)
		sort.Strings(img.Pods)
		out = append(out, *img)
	}
	for id := range c.records {
		if byID[id] == nil {
			delete(c.records, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Names[0] < out[j].Names[0] })
	if !ready {
		// Nothing may be collected: what the manifests name is not known.
		return out, byName, errNotReady
	}
	return out, byName, nil
}

// lookup finds the name containerd has an image under: ref itself or its normalised form
// ("busybox:1.36" is docker.io/library/busybox:1.36), as the runtime resolves references;
// for a reference by digest, also a name of the same repository whose target is that digest.
func lookup(byName map[string]*runtime.ImageRecord, ref string) string {
	if byName[ref] != nil {
		return ref
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ""
	}
	if byName[named.String()] != nil {
		return named.String()
	}
	if d, ok := named.(reference.Digested); ok {
		var found string
		for name, rec := range byName {
			n, err := reference.ParseDockerRef(name)
			if err == nil && rec.ID == d.Digest().String() && n.Name() == named.Name() && (found == "" || name < found) {
				found = name
			}
		}
		return found
	}
	return ""
}
