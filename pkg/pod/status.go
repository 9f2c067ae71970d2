package pod

import (
	"cmp"
	"encoding/json"
	"fmt"
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

// podStatus is the pod's status as the kubelet fills it, from what the worker knows of the pod
// at now. It reads s and changes nothing: the conditions come back with their transition times,
// kept from prev where their status did not change.
func podStatus(s *podState, hostIP string, now time.Time) (corev1.PodStatus, map[corev1.PodConditionType]corev1.PodCondition) {
	var st corev1.PodStatus
	st.HostIP = hostIP
	if hostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: hostIP}}
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
	policy := s.pod.Spec.RestartPolicy
	// As the kubelet's GeneratePodInitializedCondition: a regular init container is done when
	// it is ready (it exited 0), a sidecar when it has started.
	var incomplete []string
	for _, c := range s.inits {
		cs := containerStatus(c, policy, s.terminal, s.volErr)
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		done := cs.Ready
		if isSidecar(c.spec) {
			done = cs.Started != nil && *cs.Started
		}
		if !done {
			incomplete = append(incomplete, c.spec.Name)
		}
	}
	initialized := len(incomplete) == 0
	anyStarted := false
	for _, c := range s.apps {
		cs := containerStatus(c, policy, s.terminal, s.volErr)
		if w := cs.State.Waiting; w != nil && !initialized && c.phase == ctrNew && c.waitReason == "" {
			// As on a kubelet: app containers wait for the init containers (also in a pod that
			// failed in one of them that does not restart).
			w.Reason = "PodInitializing"
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if cs.State.Running != nil || cs.State.Terminated != nil {
			anyStarted = true
		}
	}
	if anyStarted {
		// As the kubelet's HasAnyRegularContainerStarted: a pod whose app containers have run
		// was initialized, even while a sidecar restarts.
		initialized = true
	}
	apps := make([]*corev1.Container, len(s.apps))
	for i, c := range s.apps {
		apps[i] = c.spec
	}
	switch {
	case s.terminal && !initialized:
		// An init container failed and does not restart, by its own policy or the pod's.
		st.Phase = corev1.PodFailed
	case s.terminal:
		st.Phase = Phase(policy, apps, st.ContainerStatuses, true, true)
	default:
		st.Phase = Phase(policy, apps, st.ContainerStatuses, initialized && s.sandboxOK, false)
	}
	if s.sandboxErr != nil {
		st.Message = "FailedCreatePodSandBox: " + s.sandboxErr.Error()
	}
	if s.deadlineExceeded {
		// As the kubelet's activeDeadlineHandler has it evicted.
		st.Phase, st.Reason, st.Message = corev1.PodFailed, reasonDeadlineExceeded, messageDeadlineExceeded
	}
	ready := readyCondition(s, st)
	initCond := initializedCondition(st.Phase, initialized, incomplete)
	if prev, ok := s.conds[corev1.PodInitialized]; ok && prev.Status == corev1.ConditionTrue && initCond.Status == corev1.ConditionFalse {
		// As GeneratePodInitializedCondition with RestartAllContainersOnContainerExits: a pod
		// once initialized stays so while a restart of all containers runs its init
		// containers again.
		initCond = corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	}
	conds := map[corev1.PodConditionType]corev1.PodCondition{}
	want := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodReadyToStartContainers, Status: conditionStatus(s.sandboxOK)},
		initCond,
		ready,
		{Type: corev1.PodReady, Status: ready.Status, Reason: ready.Reason, Message: ready.Message},
	}
	order := []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled}
	if allCouldRestart(s.pod) {
		want = append(want, restartingCondition(s, st.Phase))
		order = append(order, corev1.AllContainersRestarting)
	}
	for _, c := range want {
		conds[c.Type] = condition(s.conds, c, now)
	}
	for _, t := range order {
		st.Conditions = append(st.Conditions, conds[t])
	}
	return st, conds
}

// allCouldRestart reports whether a container of the pod has a restartPolicyRules rule with the
// action RestartAllContainers: such a pod has the AllContainersRestarting condition (the
// kubelet's AllContainersCouldRestart).
func allCouldRestart(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, r := range c.RestartPolicyRules {
				if r.Action == corev1.ContainerRestartRuleActionRestartAllContainers {
					return true
				}
			}
		}
	}
	return false
}

// restartingCondition is the pod's AllContainersRestarting condition as the kubelet's
// GenerateAllContainersRestartingCondition makes it: True from a container's exit by a rule with
// the action RestartAllContainers until every container is removed and the pod starts over.
func restartingCondition(s *podState, phase corev1.PodPhase) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.AllContainersRestarting, Status: corev1.ConditionFalse}
	switch {
	case phase == corev1.PodSucceeded:
		c.Reason = reasonPodCompleted
	case phase == corev1.PodFailed:
		c.Reason = reasonPodFailed
	case restartingAll(s):
		c.Status = corev1.ConditionTrue
		c.Reason = reasonRestartAllContainersStarted
		c.Message = "container exited with restart policy rule"
	}
	return c
}

// The kubelet's reason and message for a pod past its active deadline
// (pkg/kubelet/active_deadline.go).
const (
	reasonDeadlineExceeded  = "DeadlineExceeded"
	messageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
)

// The kubelet's condition reasons (pkg/kubelet/status/generate.go).
const (
	reasonPodCompleted                = "PodCompleted"
	reasonPodFailed                   = "PodFailed"
	reasonContainersNotReady          = "ContainersNotReady"
	reasonContainersNotInitialized    = "ContainersNotInitialized"
	reasonRestartAllContainersStarted = "RestartAllContainersStarted"
)

// initializedCondition is the pod's Initialized condition as the kubelet's
// GeneratePodInitializedCondition makes it: False names the init containers not done yet.
func initializedCondition(phase corev1.PodPhase, initialized bool, incomplete []string) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	switch {
	case phase == corev1.PodSucceeded:
		c.Reason = reasonPodCompleted
	case !initialized:
		c.Status = corev1.ConditionFalse
		c.Reason = reasonContainersNotInitialized
		c.Message = fmt.Sprintf("containers with incomplete status: %s", incomplete)
	}
	return c
}

// readyCondition is the pod's ContainersReady condition as the kubelet's
// GenerateContainersReadyCondition makes it, from the statuses in st: the sidecars and the app
// containers must all be ready, and False names those that are not. Its Ready condition says
// the same (a pod without readiness gates).
func readyCondition(s *podState, st corev1.PodStatus) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}
	switch st.Phase {
	case corev1.PodSucceeded:
		c.Reason = reasonPodCompleted
		return c
	case corev1.PodFailed:
		c.Reason = reasonPodFailed
		return c
	}
	var unready []string
	for i, ic := range s.inits {
		if isSidecar(ic.spec) && !st.InitContainerStatuses[i].Ready {
			unready = append(unready, ic.spec.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	if len(unready) == 0 {
		c.Status = corev1.ConditionTrue
		return c
	}
	c.Reason = reasonContainersNotReady
	c.Message = fmt.Sprintf("containers with unready status: %s", unready)
	return c
}

func conditionStatus(ok bool) corev1.ConditionStatus {
	if ok {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// condition is want with its transition time: prev's if the status is the same, else now. As
// on a kubelet, the reason and message are always want's.
func condition(prev map[corev1.PodConditionType]corev1.PodCondition, want corev1.PodCondition, now time.Time) corev1.PodCondition {
	want.LastTransitionTime = metav1.NewTime(now)
	if c, seen := prev[want.Type]; seen && c.Status == want.Status {
		want.LastTransitionTime = c.LastTransitionTime
	}
	return want
}

func allRunning(cs []corev1.ContainerStatus) bool {
	for _, c := range cs {
		if c.State.Running == nil {
			return false
		}
	}
	return len(cs) > 0
}

// containerStatus is one container's status as the kubelet reports it. terminal says the pod is
// finished for good; volErr is why its volumes could not be made, if they could not.
func containerStatus(c *ctrState, policy corev1.RestartPolicy, terminal bool, volErr error) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      c.imageID,
		RestartCount: c.restartCount(),
	}
	if c.id != "" {
		cs.ContainerID = "containerd://" + c.id
		if u := c.user; u != nil {
			// The process's identity as the runtime made it: the image's groups for the user
			// merged in unless supplementalGroupsPolicy is Strict.
			cs.User = &corev1.ContainerUser{Linux: &corev1.LinuxContainerUser{UID: u.UID, GID: u.GID, SupplementalGroups: slices.Clone(u.Groups)}}
		}
	}
	if c.last != nil {
		cs.LastTerminationState.Terminated = c.last
	}
	started := false
	waiting := func(reason, message string) {
		if reason == "" {
			reason = reasonContainerCreating
			if c.init && c.attempt == 0 && c.last == nil {
				reason = "PodInitializing"
			}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: message}
	}
	switch c.phase {
	case ctrRunning, ctrStopping, ctrLost:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.started)}
		started = c.startedOK && !c.hookBusy
		cs.Ready = (!c.init || isSidecar(c.spec)) && c.ready && started
	case ctrExited:
		t := terminatedState(c)
		if c.restarts(policy) && !terminal {
			cs.LastTerminationState.Terminated = t
			waiting(c.waitReason, c.waitMessage)
		} else {
			cs.State.Terminated = t
		}
	case ctrStarting:
		// While its image is pulled, a container waits as a kubelet reports one being made,
		// with the pull's progress as the message.
		waiting("", c.pulling)
	default:
		msg := c.waitMessage
		if c.waitReason == "" && volErr != nil {
			// As on a kubelet: the container waits in ContainerCreating while a volume fails.
			msg = "FailedMount: " + volErr.Error()
		}
		waiting(c.waitReason, msg)
	}
	if c.init && !isSidecar(c.spec) && cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
		// As the kubelet's prober manager reports it: an init container that completed is
		// ready, which is what makes it count as done in the Initialized condition.
		cs.Ready = true
	}
	cs.Started = &started
	return cs
}

func terminatedState(c *ctrState) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode:    int32(c.exit.Code),
		StartedAt:   metav1.NewTime(c.started),
		FinishedAt:  metav1.NewTime(c.exit.At),
		ContainerID: "containerd://" + c.id,
		Message:     c.message,
	}
	switch {
	case c.exit.Unknown:
		t.Reason = "Unknown"
		t.ExitCode = 137
	case c.exit.OOM:
		t.Reason = "OOMKilled"
	case c.exit.Code == 0:
		t.Reason = "Completed"
	default:
		t.Reason = "Error"
	}
	if c.exit.Code > 128 && c.exit.Code < 128+65 {
		t.Signal = int32(c.exit.Code - 128)
	}
	return t
}
