package api

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Rollout is what GET /v1/pods/{namespace}/{name}/rollout answers: the revisions of one pod.
// A revision is the first characters of a version's content hash (its metadata.uid), the same
// that `minipodctl status -o wide` shows.
type Rollout struct {
	// Current is the revision that runs (or is being started); Desired the one the manifest
	// file holds now. They differ while an update waits for its images and after a rollback.
	Current string `json:"current,omitempty"`
	Desired string `json:"desired,omitempty"`
	// Good is the last revision that became Ready: the one a rollback returns to.
	Good string `json:"good,omitempty"`
	// Failed is the revision that was rolled back, with why; it is not tried again until the
	// file changes or `minipodctl rollout retry`.
	Failed        string `json:"failed,omitempty"`
	FailedReason  string `json:"failedReason,omitempty"`
	FailedMessage string `json:"failedMessage,omitempty"`
	// Pending is the revision whose images are being pulled while Current keeps running.
	Pending        string `json:"pending,omitempty"`
	PendingMessage string `json:"pendingMessage,omitempty"`
	// Rollback reports whether failed updates of this pod are rolled back, and after how long
	// without becoming Ready.
	Rollback         bool   `json:"rollback"`
	ProgressDeadline string `json:"progressDeadline,omitempty"`
	// History lists the last revisions that ran, oldest first.
	History []Revision `json:"history"`
}

// Revision is one version of a pod that ran.
type Revision struct {
	Revision string     `json:"revision"`
	Started  time.Time  `json:"started"`
	Ready    *time.Time `json:"ready,omitempty"` // when it first became Ready
	Ended    *time.Time `json:"ended,omitempty"`
	// Outcome is running, replaced, removed, failed or rolled back to (a revision started
	// again by a rollback); Message says more when there is more to say.
	Outcome string `json:"outcome"`
	Message string `json:"message,omitempty"`
}

// Rollouts is what the rollout endpoints need from the daemon.
type Rollouts interface {
	// Rollout returns the pod's revisions; the error wraps ErrNotFound for an unknown pod.
	Rollout(namespace, name string) (Rollout, error)
	// RetryRollout lets a rolled-back revision be tried again.
	RetryRollout(namespace, name string) error
}

// SetRollouts serves GET .../rollout and POST .../rollout/retry from r. Call it before serving.
func (s *Server) SetRollouts(r Rollouts) {
	s.route("GET", "/v1/pods/{namespace}/{name}/rollout", func(w http.ResponseWriter, req *http.Request) {
		ro, err := r.Rollout(req.PathValue("namespace"), req.PathValue("name"))
		if err != nil {
			writeError(w, statusFor(err), err.Error())
			return
		}
		writeJSON(w, ro)
	})
	s.route("POST", "/v1/pods/{namespace}/{name}/rollout/retry", func(w http.ResponseWriter, req *http.Request) {
		if err := r.RetryRollout(req.PathValue("namespace"), req.PathValue("name")); err != nil {
			writeError(w, statusFor(err), err.Error())
			return
		}
		writeJSON(w, struct{}{})
	})
}

// Rollout returns the revisions of one pod.
func (c *Client) Rollout(ctx context.Context, namespace, name string) (*Rollout, error) {
	var ro Rollout
	if err := c.call(ctx, http.MethodGet, podPath(namespace, name)+"/rollout", &ro); err != nil {
		return nil, err
	}
	return &ro, nil
}

// RetryRollout lets the pod's rolled-back revision be tried again.
func (c *Client) RetryRollout(ctx context.Context, namespace, name string) error {
	return c.call(ctx, http.MethodPost, podPath(namespace, name)+"/rollout/retry", nil)
}

// ErrNoRollback is what RetryRollout errors wrap when no revision was rolled back.
var ErrNoRollback = errors.New("no rolled-back revision")
