package pod

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/manifest"
)

// Annotations of a pod that steer its updates; the node's config.Updates is the default.
const (
	AnnotationRollback         = manifest.AnnotationRollback
	AnnotationProgressDeadline = manifest.AnnotationProgressDeadline
)

// Annotations minipod adds to the pods it publishes: the revisions of the pod (the first
// revisionLen characters of a version's UID, the hash of its manifest).
const (
	AnnotationRevision        = "minipod.io/revision"         // the version that runs
	AnnotationRevisionGood    = "minipod.io/revision-good"    // the last that became Ready
	AnnotationRevisionFailed  = "minipod.io/revision-failed"  // rolled back: "REV: reason"
	AnnotationRevisionPending = "minipod.io/revision-pending" // pulling its images
)

// ReasonRolledBack is the pod's status.reason, and the Warning event's, when the version that
// runs is the last good one because the file's version failed.
const ReasonRolledBack = "RolledBack"

const (
	revisionLen = 10
	historyLen  = 10
)

// revision is the short form of a version's UID.
func revision(uid string) string {
	if len(uid) > revisionLen {
		return uid[:revisionLen]
	}
	return uid
}

// rollout is what a worker keeps of its pod's versions, so that a version that failed after an
// update can be replaced by the last good one, also by a daemon restarted in between: it is
// written to <state-dir>/rollouts/<namespace>_<name>.json on every change. Only the worker's
// loop reads and writes it; the API sees snapshots (Manager.Rollout).
type rollout struct {
	// Current is the version that runs, whole, and Since when it was started: an update's
	// progress deadline counts from there, and a daemon that finds it running after the file
	// changed adopts it, to serve while the new version's images come.
	Current *corev1.Pod `json:"current,omitempty"`
	Since   time.Time   `json:"since,omitzero"`
	// Good is the last version that became Ready, whole, to be started again by a rollback.
	Good *corev1.Pod `json:"good,omitempty"`
	// Failed is the version that was rolled back. It is not started again while the file
	// holds it, until a retry.
	Failed *failure       `json:"failed,omitempty"`
	Hist   []api.Revision `json:"history,omitempty"`
}

// currentUID is the UID of the version that runs, "" before the first.
func (r *rollout) currentUID() string {
	if r.Current == nil {
		return ""
	}
	return string(r.Current.UID)
}

type failure struct {
	UID     string    `json:"uid"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

func (m *Manager) rolloutPath(key string) string {
	return filepath.Join(m.dirs.rolloutsDir(), rolloutFile(key))
}

// pruneRollouts removes the records of pods that are neither desired nor found running: their
// files went away while the daemon was stopped, and no worker will ever read them. Workers of
// the other keys own theirs.
func (m *Manager) pruneRollouts(desired map[string]*corev1.Pod) {
	dir := m.dirs.rolloutsDir()
	entries, _ := os.ReadDir(dir)
	keep := map[string]bool{}
	for _, k := range m.foundKeys() {
		keep[rolloutFile(k)] = true
	}
	for k := range desired {
		keep[rolloutFile(k)] = true
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// loadRollout reads the key's record; a missing or unreadable one starts empty (a pod then
// has no good version to go back to until one becomes Ready).
func (m *Manager) loadRollout(key string) rollout {
	var ro rollout
	b, pending := m.records.get(m.rolloutPath(key))
	if !pending {
		var err error
		if b, err = os.ReadFile(m.rolloutPath(key)); err != nil {
			return ro
		}
	}
	if b == nil {
		return ro // removed by the previous worker of the key, not yet on disk
	}
	if err := json.Unmarshal(b, &ro); err != nil {
		m.log.Warn("rollout record unreadable, starting afresh", "pod", key, "err", err)
		return rollout{}
	}
	return ro
}

// saveRollout hands the worker's record to the writer; the API's snapshot follows with the
// next publish.
func (w *worker) saveRollout() {
	w.roGen++
	if w.ro.Good != nil {
		w.m.good.Store(w.key, w.ro.Good)
	}
	b, err := json.Marshal(&w.ro)
	if err != nil {
		w.log.Error("rollout record not saved", "err", err)
		return
	}
	w.m.records.put(w.m.rolloutPath(w.key), b)
}

// dropRollout forgets the pod's versions once its file is gone.
func (w *worker) dropRollout() {
	w.m.rollouts.Delete(w.key)
	w.m.good.Delete(w.key)
	w.m.records.put(w.m.rolloutPath(w.key), nil)
}

// updatePolicy is whether a failed version of p is rolled back, and how long it may take to
// become Ready: the pod's annotations, else the node's configuration. The annotations were
// validated with the manifest.
func (w *worker) updatePolicy(p *corev1.Pod) (rollback bool, deadline time.Duration) {
	u := w.m.cfg.Updates
	rollback, deadline = u.Rollback, u.ProgressDeadline.D()
	if v, ok := p.Annotations[AnnotationRollback]; ok {
		rollback = v == "true"
	}
	if v, err := time.ParseDuration(p.Annotations[AnnotationProgressDeadline]); err == nil && v > 0 {
		deadline = v
	}
	if deadline <= 0 { // a Config made in code without Updates
		deadline = config.DefaultProgressDeadline
	}
	return rollback, deadline
}

// want is the version the worker runs: the file's, or, when the file's failed and was rolled
// back, the last good one.
func (w *worker) want() *corev1.Pod {
	d := w.desired
	if d == nil {
		return nil
	}
	if w.rolledBack() {
		return w.ro.Good
	}
	return d
}

// rolledBack reports whether the file's version is the failed one, with a good one to run.
func (w *worker) rolledBack() bool {
	f := w.ro.Failed
	return w.desired != nil && f != nil && f.UID == string(w.desired.UID) && w.ro.Good != nil && w.ro.Good.UID != w.desired.UID
}

// versionStarted records that version p starts now.
func (w *worker) versionStarted(p *corev1.Pod) {
	uid := string(p.UID)
	if w.ro.currentUID() == uid {
		return // adopted, or started again after containerd lost it
	}
	now := time.Now()
	w.endRevision(now, "replaced", "")
	w.ro.Current, w.ro.Since = p, now
	r := api.Revision{Revision: revision(uid), Started: now, Outcome: "running"}
	if w.rolledBack() {
		r.Outcome = "rolled back to"
		r.Message = "revision " + revision(w.ro.Failed.UID) + " failed"
	}
	w.ro.Hist = append(w.ro.Hist, r)
	if len(w.ro.Hist) > historyLen {
		w.ro.Hist = w.ro.Hist[len(w.ro.Hist)-historyLen:]
	}
	w.saveRollout()
}

// endRevision closes the history entry of the current version, if it is still open.
func (w *worker) endRevision(at time.Time, outcome, message string) {
	if n := len(w.ro.Hist); n > 0 && w.ro.Hist[n-1].Ended == nil && w.ro.Hist[n-1].Revision == revision(w.ro.currentUID()) {
		h := &w.ro.Hist[n-1]
		h.Ended = &at
		if h.Outcome == "running" || outcome == "failed" {
			h.Outcome, h.Message = outcome, message
		}
	}
}

// rolloutFailureReasons are the waiting reasons that fail an update at once: it will not get
// better by itself.
var rolloutFailureReasons = map[string]bool{
	"CrashLoopBackOff":           true,
	ReasonImagePullBackOff:       true,
	ReasonErrImagePull:           true,
	ReasonErrImageNeverPull:      true,
	ReasonInvalidImageName:       true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	reasonRunContainerError:      true,
}

// stableFor is how long a version must stay Ready to become the good one (less when its
// progress deadline is shorter): a container that crashes a moment after it started was Ready
// for that moment, and must not become what a rollback returns to.
const stableFor = 10 * time.Second

// progress judges a version by the status just published. One that stays Ready for stableFor
// (or finished its work) becomes the good one. An update (a version that replaced a good one)
// that fails, or is not Ready at its deadline, is rolled back when its policy says so. It
// returns when to look again (zero: nothing is waited for).
func (w *worker) progress(s *podState, st *corev1.PodStatus, now time.Time) time.Time {
	uid := string(s.pod.UID)
	if uid != w.ro.currentUID() || w.ro.Failed != nil && w.ro.Failed.UID == uid {
		return time.Time{} // not started yet, or already judged: it is being replaced
	}
	if w.ro.Good != nil && string(w.ro.Good.UID) == uid {
		return time.Time{}
	}
	ready := false
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		s.readySince = time.Time{}
	} else if s.readySince.IsZero() {
		s.readySince = now
	}
	on, deadline := w.updatePolicy(s.pod)
	update := on && w.ro.Good != nil && w.desired != nil && w.desired.UID == s.pod.UID
	due := w.ro.Since.Add(deadline)
	switch {
	case st.Phase == corev1.PodSucceeded,
		ready && !now.Before(s.readySince.Add(min(stableFor, deadline))),
		ready && update && !now.Before(due):
		w.good(s, now)
		return time.Time{}
	case !update:
		if ready {
			return s.readySince.Add(min(stableFor, deadline))
		}
		return time.Time{}
	}
	reason, message := failedUpdate(st)
	if reason == "" {
		if now.Before(due) {
			if ready {
				return earliest(due, s.readySince.Add(min(stableFor, deadline)))
			}
			return due
		}
		reason, message = "ProgressDeadlineExceeded", fmt.Sprintf("not Ready within %s", deadline)
	}
	w.rollBack(s, reason, message, now)
	return now
}

// good makes s the version a rollback returns to.
func (w *worker) good(s *podState, now time.Time) {
	w.ro.Good = s.pod
	if n := len(w.ro.Hist); n > 0 && w.ro.Hist[n-1].Revision == revision(string(s.pod.UID)) && w.ro.Hist[n-1].Ready == nil {
		at := s.readySince
		if at.IsZero() {
			at = now
		}
		w.ro.Hist[n-1].Ready = &at
	}
	w.saveRollout()
}

// failedUpdate returns the first reason in st that fails an update at once, with its message.
func failedUpdate(st *corev1.PodStatus) (reason, message string) {
	if st.Phase == corev1.PodFailed {
		return "Failed", st.Message
	}
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for _, cs := range list {
			if wt := cs.State.Waiting; wt != nil && rolloutFailureReasons[wt.Reason] {
				msg := "container " + cs.Name
				if wt.Message != "" {
					msg += ": " + wt.Message
				}
				return wt.Reason, msg
			}
		}
	}
	return "", ""
}

// rollBack marks the current version failed; the next step replaces it by the good one.
func (w *worker) rollBack(s *podState, reason, message string, now time.Time) {
	uid := string(s.pod.UID)
	w.ro.Failed = &failure{UID: uid, Reason: reason, Message: message, At: now}
	w.endRevision(now, "failed", reason+": "+message)
	w.saveRollout()
	w.log.Warn("update failed, rolling back", "revision", revision(uid), "to", revision(string(w.ro.Good.UID)), "reason", reason, "message", message)
	w.event(s, nil, "Warning", ReasonRolledBack, "Rolling back to revision %s: revision %s failed: %s: %s",
		revision(string(w.ro.Good.UID)), revision(uid), reason, message)
	w.m.cfg.Metrics.Rollback()
}

// desiredChanged forgets a failed version once the file holds another: the new content gets
// its chance (and the old one would too, were it written back).
func (w *worker) desiredChanged() {
	if f := w.ro.Failed; f != nil && (w.desired == nil || f.UID != string(w.desired.UID)) {
		w.ro.Failed = nil
		w.saveRollout()
	}
}

// retryRollout lets the failed version run again (minipodctl rollout retry).
func (w *worker) retryRollout() {
	if w.ro.Failed == nil {
		return
	}
	w.log.Info("retrying the rolled-back version", "revision", revision(w.ro.Failed.UID))
	w.ro.Failed = nil
	w.saveRollout()
}

// annotateRevisions adds the revision annotations and, after a rollback or while an update
// pulls its images, the pod's reason and message.
func (w *worker) annotateRevisions(p *corev1.Pod) {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationRevision] = revision(string(p.UID))
	if g := w.ro.Good; g != nil {
		p.Annotations[AnnotationRevisionGood] = revision(string(g.UID))
	}
	if f := w.ro.Failed; f != nil {
		p.Annotations[AnnotationRevisionFailed] = revision(f.UID) + ": " + f.Reason
	}
	if w.rolledBack() && w.cur != nil && w.cur.pod.UID == w.ro.Good.UID && p.Status.Reason == "" {
		f := w.ro.Failed
		p.Status.Reason = ReasonRolledBack
		p.Status.Message = fmt.Sprintf("running revision %s: revision %s failed: %s: %s", revision(string(w.ro.Good.UID)), revision(f.UID), f.Reason, f.Message)
	}
	if pp := w.pre; pp != nil {
		p.Annotations[AnnotationRevisionPending] = revision(string(pp.pod.UID))
		if p.Status.Message == "" {
			p.Status.Message = pp.msg
		}
	}
}

// rolloutViewKey is what the API's snapshot of the record was made from: a new one is made
// only when it changes, not at every turn of the loop.
type rolloutViewKey struct {
	gen              int
	desired, pending string
	msg              string
}

// refreshRolloutView publishes a new snapshot for the API when the record, the desired version
// or the pending update changed.
func (w *worker) refreshRolloutView() {
	k := rolloutViewKey{gen: w.roGen}
	if w.desired != nil {
		k.desired = string(w.desired.UID)
	}
	if w.pre != nil {
		k.pending, k.msg = string(w.pre.pod.UID), w.pre.msg
	}
	if k != w.roView {
		w.roView = k
		w.m.rollouts.Store(w.key, w.rolloutView())
	}
}

// rolloutView is the API's snapshot of the record.
func (w *worker) rolloutView() api.Rollout {
	// A copy of the history: the loop changes an entry by setting its fields (never through
	// the time pointers), so the copy's entries stay as they were.
	v := api.Rollout{Current: revision(w.ro.currentUID()), History: append([]api.Revision{}, w.ro.Hist...)}
	if w.desired != nil {
		v.Desired = revision(string(w.desired.UID))
		on, d := w.updatePolicy(w.desired)
		v.Rollback, v.ProgressDeadline = on, d.String()
	}
	if g := w.ro.Good; g != nil {
		v.Good = revision(string(g.UID))
	}
	if f := w.ro.Failed; f != nil {
		v.Failed, v.FailedReason, v.FailedMessage = revision(f.UID), f.Reason, f.Message
	}
	if pp := w.pre; pp != nil {
		v.Pending, v.PendingMessage = revision(string(pp.pod.UID)), pp.msg
	}
	return v
}

// Rollout returns the revisions of a pod (api.Rollouts).
func (m *Manager) Rollout(namespace, name string) (api.Rollout, error) {
	if namespace == "" {
		namespace = "default"
	}
	v, ok := m.rollouts.Load(Key(namespace, name))
	if !ok {
		return api.Rollout{}, fmt.Errorf("pod %s/%s: %w", namespace, name, api.ErrNotFound)
	}
	return v.(api.Rollout), nil
}

// RetryRollout lets a pod's rolled-back version run again (api.Rollouts).
func (m *Manager) RetryRollout(namespace, name string) error {
	ro, err := m.Rollout(namespace, name)
	if err != nil {
		return err
	}
	if ro.Failed == "" {
		return fmt.Errorf("pod %s/%s: %w", namespace, name, api.ErrNoRollback)
	}
	key := Key(namespace, name)
	select {
	case m.retries <- key:
		return nil
	default:
		return fmt.Errorf("pod %s/%s: too many retries at once, try again", namespace, name)
	}
}
