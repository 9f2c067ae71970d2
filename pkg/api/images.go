package api

import (
	"context"
	"net/http"
	"time"
)

// Image is one image of the daemon's containerd namespace, as GET /v1/images lists it: the
// names that share one target digest.
type Image struct {
	ID    string   `json:"id"`    // target digest (manifest or index)
	Names []string `json:"names"` // sorted
	Size  int64    `json:"size"`  // bytes of content of the image for this platform
	// Pods are the pods (namespace/name) whose manifests name the image or whose containers
	// were created from it.
	Pods   []string `json:"pods"`
	InUse  bool     `json:"inUse"`  // named by a manifest, or a container was created from it
	Pinned bool     `json:"pinned"` // imported (labelled io.cri-containerd.pinned)
	// Keep says why garbage collection would not remove the image: "in use", "pause image",
	// "pinned"; "" when it may.
	Keep string `json:"keep,omitempty"`
	// FirstDetected is when the daemon first saw the image; LastUsed when it last saw it in use,
	// absent when it has not since it started.
	FirstDetected time.Time  `json:"firstDetected"`
	LastUsed      *time.Time `json:"lastUsed,omitempty"`
}

// ImageList is the answer of GET /v1/images.
type ImageList struct {
	Items []Image `json:"items"`
}

// Pruned is the answer of POST /v1/images/prune: the images removed, and the sum of their
// sizes.
type Pruned struct {
	Removed []Image `json:"removed"`
	Freed   int64   `json:"freed"`
}

// Images is what GET /v1/images and POST /v1/images/prune need from the daemon.
type Images interface {
	// Images lists the images, sorted by first name.
	Images(ctx context.Context) ([]Image, error)
	// PruneImages removes every image not in use, pinned or the pause image, now.
	PruneImages(ctx context.Context) (Pruned, error)
}

// SetImages serves GET /v1/images and POST /v1/images/prune from img. Call it before serving;
// without it neither route exists (404).
func (s *Server) SetImages(img Images) {
	s.route("GET", "/v1/images", func(w http.ResponseWriter, r *http.Request) {
		list, err := img.Images(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if list == nil {
			list = []Image{}
		}
		writeJSON(w, ImageList{Items: list})
	})
	s.route("POST", "/v1/images/prune", func(w http.ResponseWriter, r *http.Request) {
		// Removing images waits for containerd's collection of their content: allow for it.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Minute))
		out, err := img.PruneImages(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if out.Removed == nil {
			out.Removed = []Image{}
		}
		writeJSON(w, out)
	})
}

// Images lists the daemon's images.
func (c *Client) Images(ctx context.Context) (*ImageList, error) {
	var list ImageList
	if err := c.call(ctx, http.MethodGet, "/v1/images", &list); err != nil {
		return nil, err
	}
	return &list, nil
}

// PruneImages asks the daemon to remove every unused image now.
func (c *Client) PruneImages(ctx context.Context) (*Pruned, error) {
	var out Pruned
	if err := c.call(ctx, http.MethodPost, "/v1/images/prune", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
