package imagegc

import (
	"cmp"
	"slices"
	"time"
)

// Policy is when images are collected, with the kubelet's meaning and defaults.
type Policy struct {
	// HighThresholdPercent is the image file system's usage (percent of its capacity) at or
	// above which collection runs: imageGCHighThresholdPercent, default 85. 100 disables it.
	HighThresholdPercent int
	// LowThresholdPercent is the usage collection brings the file system down to:
	// imageGCLowThresholdPercent, default 80.
	LowThresholdPercent int
	// MinAge is how long an image must have been known before it may be collected:
	// imageMinimumGCAge, default 2 minutes.
	MinAge time.Duration
}

// DefaultPolicy is the kubelet's.
var DefaultPolicy = Policy{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 2 * time.Minute}

// Image is one image as collection sees it: the names that share one target digest, which
// go and stay together.
type Image struct {
	ID    string   // target digest
	Names []string // sorted
	Size  int64
	// Pinned images (imported: they cannot be pulled again) are never collected.
	Pinned bool
	// Protected images (the pause image) are never collected.
	Protected bool
	// Pods names the pods that use the image, as namespace/name: pods of the manifests that
	// name it, and pods whose containers were created from it. An image with pods is in use.
	Pods []string
	// InUse: a manifest names it or a container was created from it (with or without a pod).
	InUse bool
	// FirstDetected is when the daemon first saw the image; LastUsed when it last saw it in
	// use (zero if never since it started).
	FirstDetected, LastUsed time.Time
	// Updated is containerd's record time (last pull or import) of the newest name.
	Updated time.Time
}

// Keep reports why img may not be collected ("" when it may): in use, pinned, protected.
func (img *Image) Keep() string {
	switch {
	case img.InUse:
		return "in use"
	case img.Protected:
		return "pause image"
	case img.Pinned:
		return "pinned"
	}
	return ""
}

// lastUsed is the time collection orders by: when the daemon last saw the image in use or,
// for one it has not seen in use since it started, when containerd last stored it.
func (img *Image) lastUsed() time.Time {
	if !img.LastUsed.IsZero() {
		return img.LastUsed
	}
	return img.Updated
}

// EvictionOrder returns the images that may be collected, least recently used first, then
// first detected first (as the kubelet orders them), then by ID so that the order is stable.
// Images in use, pinned or protected are left out.
func EvictionOrder(imgs []Image) []Image {
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		if img.Keep() == "" {
			out = append(out, img)
		}
	}
	slices.SortFunc(out, func(a, b Image) int {
		return cmp.Or(a.lastUsed().Compare(b.lastUsed()), a.FirstDetected.Compare(b.FirstDetected), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Select picks, from images in eviction order, those to remove to free bytesToFree: in order,
// skipping any detected less than minAge before now, until the sizes of those picked reach
// bytesToFree. It returns them and the bytes they free. bytesToFree < 0 picks every one old
// enough.
func Select(order []Image, now time.Time, minAge time.Duration, bytesToFree int64) ([]Image, int64) {
	var picked []Image
	var freed int64
	for _, img := range order {
		if bytesToFree >= 0 && freed >= bytesToFree {
			break
		}
		if now.Sub(img.FirstDetected) < minAge {
			continue
		}
		picked = append(picked, img)
		freed += img.Size
	}
	return picked, freed
}

// Usage is the image file system's state and what collection should free:
// usage percent as the kubelet computes it (100 - available*100/capacity, rounded down in
// available's favour), and, when usage is at or above the high threshold, the bytes to free
// to bring it down to the low threshold.
func Usage(capacity, available int64, p Policy) (percent int, bytesToFree int64, over bool) {
	if available > capacity {
		available = capacity
	}
	if capacity <= 0 {
		return 0, 0, false
	}
	percent = 100 - int(available*100/capacity)
	if p.HighThresholdPercent >= 100 || percent < p.HighThresholdPercent {
		return percent, 0, false
	}
	return percent, capacity*int64(100-p.LowThresholdPercent)/100 - available, true
}
