package pod

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// store holds the latest published view of every pod. Workers write their own entry; readers
// get copies, or the entry's JSON. It is safe for concurrent use.
type store struct {
	mu   sync.RWMutex
	pods map[string]*storeEntry
}

// storeEntry is one published pod, which is never modified afterwards, and its JSON as the API
// sends it, encoded by the first list that wants it: between two polls of a status reader most
// pods have not changed, and encoding them was most of a list's cost.
type storeEntry struct {
	pod  *corev1.Pod
	json atomic.Pointer[[]byte]
}

func (s *store) set(key string, p *corev1.Pod) {
	s.mu.Lock()
	if s.pods == nil {
		s.pods = map[string]*storeEntry{}
	}
	s.pods[key] = &storeEntry{pod: p}
	s.mu.Unlock()
}

func (s *store) remove(key string) {
	s.mu.Lock()
	delete(s.pods, key)
	s.mu.Unlock()
}

func (s *store) get(key string) *corev1.Pod {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e := s.pods[key]; e != nil {
		return e.pod
	}
	return nil
}

// list returns every published pod with its JSON, sorted by namespace and name. The pods are
// shared with the store: read them, never change them.
func (s *store) list() []Encoded {
	s.mu.RLock()
	entries := make([]*storeEntry, 0, len(s.pods))
	for _, e := range s.pods {
		entries = append(entries, e)
	}
	s.mu.RUnlock()
	out := make([]Encoded, 0, len(entries))
	for _, e := range entries {
		item := Encoded{Pod: e.pod}
		if b := e.json.Load(); b != nil {
			item.JSON = *b
		} else if b, err := EncodePod(e.pod); err == nil {
			e.json.Store(&b)
			item.JSON = b
		}
		out = append(out, item)
	}
	SortByName(out)
	return out
}

// SortByName sorts items by namespace, then name, keeping the order of equal ones.
func SortByName(items []Encoded) {
	slices.SortStableFunc(items, func(a, b Encoded) int {
		return cmp.Or(strings.Compare(a.Pod.Namespace, b.Pod.Namespace), strings.Compare(a.Pod.Name, b.Pod.Name))
	})
}

// Encoded is a pod and its JSON as the API sends it. Pod may be shared: read it, never change
// it. JSON is nil when it has not been encoded (EncodePod does it).
type Encoded struct {
	Pod  *corev1.Pod
	JSON []byte
}

// EncodePod returns the pod's JSON as the API sends it: with apiVersion and kind, as an API
// server fills them in.
func EncodePod(p *corev1.Pod) ([]byte, error) {
	c := *p // the type meta is set on a shallow copy: p may be shared
	if c.APIVersion == "" {
		c.APIVersion = "v1"
	}
	if c.Kind == "" {
		c.Kind = "Pod"
	}
	return json.Marshal(&c)
}

// publish builds the pod's status from the worker's state, as the kubelet fills it, and stores
// a copy for the API. Published pods are never modified afterwards.
func (w *worker) publish() {
	s := w.cur
	p := s.pod.DeepCopy()
	st := &p.Status
	st.HostIP = w.m.cfg.HostIP
	if st.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if !s.startTime.IsZero() {
		t := metav1.NewTime(s.startTime)
		st.StartTime = &t
	}
	if s.sandboxOK {
		for i, ip := range s.ips {
			if i == 0 {
				st.PodIP = ip
			}
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	initialized := true
	for _, c := range s.inits {
		cs := w.containerStatus(c, true)
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if isSidecar(c.spec) {
			if cs.State.Running == nil || cs.Started == nil || !*cs.Started {
				initialized = false
			}
		} else if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initialized = false
		}
	}
	allReady := true
	for _, c := range s.apps {
		cs := w.containerStatus(c, false)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			allReady = false
		}
	}
	switch {
	case s.terminal && !initialized:
		// An init container failed under restartPolicy Never.
		st.Phase = corev1.PodFailed
	case s.terminal:
		st.Phase = Phase(s.pod.Spec.RestartPolicy, true, st.ContainerStatuses)
	default:
		st.Phase = Phase(s.pod.Spec.RestartPolicy, initialized && s.sandboxOK, st.ContainerStatuses)
	}
	if s.sandboxErr != nil {
		st.Reason = ""
		st.Message = "FailedCreatePodSandBox: " + s.sandboxErr.Error()
	}
	now := time.Now()
	w.setCond(s, corev1.PodScheduled, true, now)
	w.setCond(s, corev1.PodReadyToStartContainers, s.sandboxOK, now)
	w.setCond(s, corev1.PodInitialized, initialized, now)
	ready := allReady && st.Phase == corev1.PodRunning
	w.setCond(s, corev1.ContainersReady, ready, now)
	w.setCond(s, corev1.PodReady, ready, now)
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		st.Conditions = append(st.Conditions, s.conds[t])
	}
	if !s.startDone && st.Phase == corev1.PodRunning && allRunning(st.ContainerStatuses) {
		s.startDone = true
		w.m.cfg.Metrics.PodStartDuration(time.Since(s.seen))
	}
	w.m.store.set(w.key, p)
}

func allRunning(cs []corev1.ContainerStatus) bool {
	for _, c := range cs {
		if c.State.Running == nil {
			return false
		}
	}
	return len(cs) > 0
}

// publishTerminating marks the published pod as being deleted, so that the table shows
// Terminating while its containers get their grace period.
func (w *worker) publishTerminating() {
	old := w.m.store.get(w.key)
	if old == nil {
		return
	}
	p := old.DeepCopy()
	now := metav1.Now()
	p.DeletionTimestamp = &now
	grace := w.cur.rec.Grace
	p.DeletionGracePeriodSeconds = &grace
	w.m.store.set(w.key, p)
}

func (w *worker) setCond(s *podState, t corev1.PodConditionType, ok bool, now time.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	c, seen := s.conds[t]
	if seen && c.Status == status {
		return
	}
	c = corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.NewTime(now)}
	if !ok {
		switch t {
		case corev1.PodReady, corev1.ContainersReady:
			c.Reason = "ContainersNotReady"
		case corev1.PodInitialized:
			c.Reason = "ContainersNotInitialized"
		}
	}
	s.conds[t] = c
}

func (w *worker) containerStatus(c *ctrState, init bool) corev1.ContainerStatus {
	policy := w.cur.pod.Spec.RestartPolicy
	cs := corev1.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      c.imageID,
		RestartCount: int32(c.attempt),
	}
	if c.id != "" {
		cs.ContainerID = "containerd://" + c.id
	}
	if c.last != nil {
		cs.LastTerminationState.Terminated = c.last
	}
	started := false
	switch {
	case c.pulling != "" && !c.running:
		// While its image is pulled, a container waits as a kubelet reports one being made
		// (ContainerCreating; PodInitializing for an init container's first attempt), with
		// the pull's progress as the message.
		reason := "ContainerCreating"
		if c.exited {
			cs.LastTerminationState.Terminated = terminatedState(c)
		} else if init {
			reason = "PodInitializing"
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.pulling}
	case c.running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.started)}
		started = c.startedOK
		cs.Ready = (!init || isSidecar(c.spec)) && c.ready && c.startedOK
	case c.exited:
		t := terminatedState(c)
		restarts := ShouldRestart(policy, t.ExitCode) && !(init && t.ExitCode == 0)
		if init && policy == corev1.RestartPolicyNever {
			restarts = false
		}
		if isSidecar(c.spec) {
			restarts = true
		}
		if restarts && !w.cur.terminal {
			cs.LastTerminationState.Terminated = t
			reason := c.waitReason
			if reason == "" {
				reason = "ContainerCreating"
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.waitMessage}
		} else {
			cs.State.Terminated = t
		}
	default:
		reason := c.waitReason
		if reason == "" && w.cur.volErr != nil {
			// As on a kubelet: the container waits in ContainerCreating while a volume fails.
			c.waitMessage = "FailedMount: " + w.cur.volErr.Error()
		}
		if reason == "" {
			if init {
				reason = "PodInitializing"
			} else {
				reason = "ContainerCreating"
			}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.waitMessage}
	}
	cs.Started = &started
	return cs
}
