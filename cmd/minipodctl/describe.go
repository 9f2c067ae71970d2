package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/api"
)

// cmdDescribe prints a pod the way kubectl describe does: identity, status, containers,
// conditions, volumes and the pod's events. Every value is printed through escape.
func cmdDescribe(ctx context.Context, c *api.Client, p *parsedArgs, stdout io.Writer) error {
	if len(p.positional) != 1 {
		return fmt.Errorf("describe takes one pod name")
	}
	list, err := c.Pods(ctx)
	if err != nil {
		return err
	}
	pod, err := resolvePod(list, p.positional[0])
	if err != nil {
		return err
	}
	evs, err := c.Events(ctx, namespaceOf(pod), pod.Name, false, nil)
	if err != nil {
		return err
	}
	// A pod that never ran (a refused manifest) has no revisions: the section is left out.
	ro, _ := c.Rollout(ctx, namespaceOf(pod), pod.Name)
	describePod(stdout, pod, ro, evs.Items, time.Now())
	return nil
}

func describePod(out io.Writer, pod *corev1.Pod, ro *api.Rollout, evs []corev1.Event, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 1, ' ', 0)
	kv := func(indent, k, v string) { fmt.Fprintf(w, "%s%s:\t%s\n", indent, k, escape(v)) }
	kv("", "Name", pod.Name)
	kv("", "Namespace", namespaceOf(pod))
	if pod.Status.StartTime != nil {
		kv("", "Start Time", pod.Status.StartTime.Format(time.RFC1123Z))
	}
	// mapLines escapes each entry itself: its lines are its own.
	fmt.Fprintf(w, "Labels:\t%s\n", mapLines(pod.Labels))
	fmt.Fprintf(w, "Annotations:\t%s\n", mapLines(pod.Annotations))
	status := string(pod.Status.Phase)
	if pod.DeletionTimestamp != nil {
		status = "Terminating"
	}
	kv("", "Status", status)
	if pod.Status.Reason != "" {
		kv("", "Reason", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		kv("", "Message", pod.Status.Message)
	}
	kv("", "IP", pod.Status.PodIP)
	kv("", "Host IP", pod.Status.HostIP)
	w.Flush()
	describeRevisions(out, ro)
	section := func(title string, specs []corev1.Container, sts []corev1.ContainerStatus) {
		if len(specs) == 0 {
			return
		}
		fmt.Fprintf(out, "%s:\n", title)
		byName := map[string]corev1.ContainerStatus{}
		for _, s := range sts {
			byName[s.Name] = s
		}
		for _, ctr := range specs {
			st := byName[ctr.Name]
			fmt.Fprintf(out, "  %s:\n", escape(ctr.Name))
			kv("    ", "Container ID", st.ContainerID)
			kv("    ", "Image", ctr.Image)
			kv("    ", "Image ID", st.ImageID)
			if len(ctr.Command) > 0 {
				kv("    ", "Command", strings.Join(ctr.Command, " "))
			}
			if len(ctr.Args) > 0 {
				kv("    ", "Args", strings.Join(ctr.Args, " "))
			}
			describeState(w, "State", st.State)
			if st.LastTerminationState.Terminated != nil {
				describeState(w, "Last State", st.LastTerminationState)
			}
			kv("    ", "Ready", fmt.Sprint(st.Ready))
			kv("    ", "Restart Count", fmt.Sprint(st.RestartCount))
			for _, pr := range []struct {
				name string
				p    *corev1.Probe
			}{{"Liveness", ctr.LivenessProbe}, {"Readiness", ctr.ReadinessProbe}, {"Startup", ctr.StartupProbe}} {
				if pr.p != nil {
					kv("    ", pr.name, probeLine(pr.p))
				}
			}
			w.Flush()
		}
	}
	section("Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses)
	section("Containers", pod.Spec.Containers, pod.Status.ContainerStatuses)
	if len(pod.Status.Conditions) > 0 {
		fmt.Fprintln(out, "Conditions:")
		fmt.Fprintln(w, "  Type\tStatus")
		for _, c := range pod.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\n", escape(string(c.Type)), escape(string(c.Status)))
		}
		w.Flush()
	}
	if len(pod.Spec.Volumes) > 0 {
		fmt.Fprintln(out, "Volumes:")
		for _, v := range pod.Spec.Volumes {
			fmt.Fprintf(out, "  %s\n", escape(v.Name))
		}
	}
	fmt.Fprint(out, "Events:")
	if len(evs) == 0 {
		fmt.Fprintln(out, "  <none>")
		return
	}
	fmt.Fprintln(out)
	printEvents(out, evs, now, false)
}

func describeState(w io.Writer, title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		fmt.Fprintf(w, "    %s:\tRunning\n      Started:\t%s\n", title, s.Running.StartedAt.Format(time.RFC1123Z))
	case s.Waiting != nil:
		fmt.Fprintf(w, "    %s:\tWaiting\n      Reason:\t%s\n", title, escape(s.Waiting.Reason))
		if s.Waiting.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", escape(s.Waiting.Message))
		}
	case s.Terminated != nil:
		t := s.Terminated
		fmt.Fprintf(w, "    %s:\tTerminated\n      Reason:\t%s\n      Exit Code:\t%d\n      Started:\t%s\n      Finished:\t%s\n",
			title, escape(t.Reason), t.ExitCode, t.StartedAt.Format(time.RFC1123Z), t.FinishedAt.Format(time.RFC1123Z))
		if t.Message != "" {
			// Written by the container (its terminationMessagePath, or its log's tail).
			fmt.Fprintf(w, "      Message:\t%s\n", escape(strings.ReplaceAll(strings.TrimSpace(t.Message), "\n", " ")))
		}
	}
}

func probeLine(p *corev1.Probe) string {
	h := "unknown"
	switch {
	case p.Exec != nil:
		h = "exec " + fmt.Sprint(p.Exec.Command)
	case p.HTTPGet != nil:
		h = fmt.Sprintf("http-get %s:%s%s", strings.ToLower(string(p.HTTPGet.Scheme)), p.HTTPGet.Port.String(), p.HTTPGet.Path)
	case p.TCPSocket != nil:
		h = "tcp-socket :" + p.TCPSocket.Port.String()
	case p.GRPC != nil:
		h = fmt.Sprintf("grpc :%d", p.GRPC.Port)
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", h,
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
}

func mapLines(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = escape(k + "=" + m[k])
	}
	return strings.Join(parts, "\n\t")
}

// printEvents prints events as kubectl does: in describe without the object column. Every
// field is printed through escape: messages carry probe output and container names.
func printEvents(out io.Writer, evs []corev1.Event, now time.Time, object bool) {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	if object {
		fmt.Fprintln(w, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
	} else {
		fmt.Fprintln(w, "  Type\tReason\tAge\tFrom\tMessage")
		fmt.Fprintln(w, "  ----\t------\t----\t----\t-------")
	}
	for _, e := range evs {
		age := formatAge(metav1.NewTime(e.LastTimestamp.Time), now)
		if e.Count > 1 {
			age = fmt.Sprintf("%s (x%d over %s)", age, e.Count, formatAge(metav1.NewTime(e.FirstTimestamp.Time), now))
		}
		if object {
			obj := "pod/" + e.InvolvedObject.Name
			if e.InvolvedObject.Kind == "Node" {
				obj = "node/" + e.InvolvedObject.Name
			}
			if e.InvolvedObject.FieldPath != "" {
				obj += " " + e.InvolvedObject.FieldPath
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", formatAge(metav1.NewTime(e.LastTimestamp.Time), now), escape(e.Type), escape(e.Reason), escape(obj), escape(e.Message))
		} else {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", escape(e.Type), escape(e.Reason), age, "minipod", escape(e.Message))
		}
	}
	w.Flush()
}

// cmdEvents prints the daemon's events; with -f it keeps printing new ones until Ctrl-C.
func cmdEvents(ctx context.Context, c *api.Client, p *parsedArgs, stdout io.Writer) error {
	name := ""
	if len(p.positional) > 0 {
		name = p.positional[0]
	}
	if !p.bools["follow"] {
		list, err := c.Events(ctx, "", name, false, nil)
		if err != nil {
			return err
		}
		if len(list.Items) == 0 {
			fmt.Fprintln(stdout, "No events found.")
			return nil
		}
		printEvents(stdout, list.Items, time.Now(), true)
		return nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := c.Events(ctx, "", name, true, func(e corev1.Event) {
		printEvents(stdout, []corev1.Event{e}, time.Now(), true)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
