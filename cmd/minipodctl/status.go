package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// manifestAnnotation holds the path of the manifest file a pod came from.
const (
	manifestAnnotation = "minipod.io/manifest"
	revisionAnnotation = "minipod.io/revision" // the running version's short content hash
)

// podSummary is what the READY, STATUS and RESTARTS columns are made of.
type podSummary struct {
	Ready, Total int
	Status       string
	Restarts     int
	LastRestart  time.Time // finish time of the most recent restart counted, zero if none
}

// summarizePod computes the READY, STATUS and RESTARTS columns the way kubectl's pod printer
// (printPod in kubernetes pkg/printers/internalversion) does:
//
//   - STATUS starts as status.reason, else the phase;
//   - the first init container that has not completed turns it into Init:<reason>,
//     Init:Signal:N, Init:ExitCode:N or Init:N/M (restartable "sidecar" init containers that
//     have started do not block);
//   - once initialized, the first app container (in spec order) that is waiting or terminated
//     gives its reason, Signal:N or ExitCode:N; a "Completed" pod that still has a ready
//     running container shows Running, or NotReady without the Ready condition;
//   - a pod with a deletion timestamp shows Terminating (Unknown for NodeLost) unless its phase
//     is terminal.
//
// READY counts ready running app containers (and started ready sidecars) over app containers
// plus sidecars; RESTARTS sums restartCount of app containers and sidecars (of all init
// containers while the pod is still initializing).
func summarizePod(pod *corev1.Pod) podSummary {
	var s podSummary
	s.Total = len(pod.Spec.Containers)
	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	sidecars := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			s.Total++
		}
	}

	var lastRestart, lastSidecarRestart time.Time
	sidecarRestarts := 0
	later := func(t *time.Time, st corev1.ContainerStatus) {
		if term := st.LastTerminationState.Terminated; term != nil && term.FinishedAt.Time.After(*t) {
			*t = term.FinishedAt.Time
		}
	}

	initializing := false
	for i, st := range pod.Status.InitContainerStatuses {
		s.Restarts += int(st.RestartCount)
		later(&lastRestart, st)
		if sidecars[st.Name] {
			sidecarRestarts += int(st.RestartCount)
			later(&lastSidecarRestart, st)
		}
		switch {
		case st.State.Terminated != nil && st.State.Terminated.ExitCode == 0:
			continue
		case sidecars[st.Name] && st.Started != nil && *st.Started:
			if st.Ready {
				s.Ready++
			}
			continue
		case st.State.Terminated != nil:
			t := st.State.Terminated
			switch {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = "Init:Signal:" + strconv.Itoa(int(t.Signal))
			default:
				reason = "Init:ExitCode:" + strconv.Itoa(int(t.ExitCode))
			}
		case st.State.Waiting != nil && st.State.Waiting.Reason != "" && st.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + st.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}

	if !initializing || podConditionTrue(pod, corev1.PodInitialized) {
		s.Restarts = sidecarRestarts
		lastRestart = lastSidecarRestart
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			st := pod.Status.ContainerStatuses[i]
			s.Restarts += int(st.RestartCount)
			later(&lastRestart, st)
			switch {
			case st.State.Waiting != nil && st.State.Waiting.Reason != "":
				reason = st.State.Waiting.Reason
			case st.State.Terminated != nil && st.State.Terminated.Reason != "":
				reason = st.State.Terminated.Reason
			case st.State.Terminated != nil && st.State.Terminated.Signal != 0:
				reason = "Signal:" + strconv.Itoa(int(st.State.Terminated.Signal))
			case st.State.Terminated != nil:
				reason = "ExitCode:" + strconv.Itoa(int(st.State.Terminated.ExitCode))
			case st.Ready && st.State.Running != nil:
				hasRunning = true
				s.Ready++
			}
		}
		if reason == "Completed" && hasRunning {
			if podConditionTrue(pod, corev1.PodReady) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	if pod.DeletionTimestamp != nil {
		terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
		if pod.Status.Reason == "NodeLost" {
			reason = "Unknown"
		} else if !terminal {
			reason = "Terminating"
		}
	}
	s.Status = reason
	s.LastRestart = lastRestart
	return s
}

func podConditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podStatus is the STATUS column of pod.
func podStatus(pod *corev1.Pod) string { return summarizePod(pod).Status }

// formatAge is kubectl's short human duration of now-t ("5s", "3m12s", "2d3h"), or
// "<unknown>" for a zero time.
func formatAge(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// podRow is one line of the status table.
type podRow struct {
	Name, Ready, Status, Restarts, Age string
	IP, Manifest, Revision             string // wide only
}

// displayName is name for the default namespace and namespace/name otherwise.
func displayName(pod *corev1.Pod) string {
	if pod.Namespace == "" || pod.Namespace == "default" {
		return pod.Name
	}
	return pod.Namespace + "/" + pod.Name
}

func makeRow(pod *corev1.Pod, now time.Time) podRow {
	s := summarizePod(pod)
	restarts := strconv.Itoa(s.Restarts)
	if s.Restarts != 0 && !s.LastRestart.IsZero() {
		restarts = fmt.Sprintf("%d (%s ago)", s.Restarts, formatAge(metav1.NewTime(s.LastRestart), now))
	}
	started := pod.CreationTimestamp
	if pod.Status.StartTime != nil && !pod.Status.StartTime.IsZero() {
		started = *pod.Status.StartTime
	}
	ip := pod.Status.PodIP
	if ip == "" && len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	if ip == "" {
		ip = "<none>"
	}
	rev := pod.Annotations[revisionAnnotation]
	if rev == "" {
		rev = "<none>"
	}
	manifest := pod.Annotations[manifestAnnotation]
	if manifest == "" {
		manifest = "<none>"
	}
	// Printed as is by the table and watch: escaped here (see escape).
	return podRow{
		Name:     escape(displayName(pod)),
		Ready:    fmt.Sprintf("%d/%d", s.Ready, s.Total),
		Status:   escape(s.Status),
		Restarts: restarts,
		Age:      formatAge(started, now),
		IP:       escape(ip),
		Manifest: escape(manifest),
		Revision: escape(rev),
	}
}

// tableHeader is the table's first line; wide adds IP and MANIFEST (the contract's columns,
// where tools read them), then REVISION.
func tableHeader(wide bool) string {
	if wide {
		return "NAME\tREADY\tSTATUS\tRESTARTS\tAGE\tIP\tMANIFEST\tREVISION"
	}
	return "NAME\tREADY\tSTATUS\tRESTARTS\tAGE"
}

// line is the row as the table prints it, tab-separated.
func (r podRow) line(wide bool) string {
	line := r.Name + "\t" + r.Ready + "\t" + r.Status + "\t" + r.Restarts + "\t" + r.Age
	if wide {
		line += "\t" + r.IP + "\t" + r.Manifest + "\t" + r.Revision
	}
	return line
}

// printTable writes pods like `kubectl get pods` (tab-aligned, 3 spaces between columns).
func printTable(w io.Writer, pods []corev1.Pod, wide bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, tableHeader(wide))
	for i := range pods {
		fmt.Fprintln(tw, makeRow(&pods[i], now).line(wide))
	}
	return tw.Flush()
}
