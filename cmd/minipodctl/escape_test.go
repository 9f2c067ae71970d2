package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/events"
)

// pwned retitles the terminal window (OSC 0 ... BEL) and clears the screen (CSI 2J).
const pwned = "\x1b]0;pwned\x07\x1b[2J"

// pwnedEscaped is how the human-readable outputs show it.
const pwnedEscaped = `\x1b]0;pwned\x07\x1b[2J`

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		in, one, lines string
	}{
		{"plain text", "plain text", "plain text"},
		{"ünïcödé ✓ 日本", "ünïcödé ✓ 日本", "ünïcödé ✓ 日本"},
		{pwned, pwnedEscaped, pwnedEscaped},
		{"a\nb\tc\rd", `a\nb\tc\rd`, "a\nb\tc\\rd"},
		{"nul\x00 bs\x08 del\x7f", `nul\x00 bs\x08 del\x7f`, `nul\x00 bs\x08 del\x7f`},
		{"c1 csi \u009b2J nel \u0085", `c1 csi \u009b2J nel \u0085`, `c1 csi \u009b2J nel \u0085`},
		{"raw 8-bit csi \x9b2J, bad utf-8 \xff", `raw 8-bit csi \x9b2J, bad utf-8 \xff`, `raw 8-bit csi \x9b2J, bad utf-8 \xff`},
		{"", "", ""},
	} {
		if got := escape(tc.in); got != tc.one {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.one)
		}
		if got := escapeLines(tc.in); got != tc.lines {
			t.Errorf("escapeLines(%q) = %q, want %q", tc.in, got, tc.lines)
		}
	}
}

// hasControl reports whether s holds a control character other than newline (and tab, which
// the table writer turns into spaces anyway).
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return false
}

// hostilePod is a pod whose container wrote an escape sequence as its termination message and
// whose waiting reason and probe event carry one too.
func hostilePod() corev1.Pod {
	start := metav1.NewTime(time.Now().Add(-time.Hour))
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: start,
			Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", RestartCount: 1,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "CrashLoopBackOff", Message: "back-off restarting: " + pwned}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, Reason: "Error", Message: pwned,
					StartedAt: start, FinishedAt: start}}}}},
	}
}

// serveWithEvents is serve with an event recorder holding one event per message.
func serveWithEvents(t *testing.T, pod corev1.Pod, messages ...string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "minipod.sock")
	srv := api.NewServer(&fakeStore{pods: []corev1.Pod{pod}}, &fakeRuntime{}, nil)
	rec := events.NewRecorder(100)
	for _, m := range messages {
		rec.Emit(pod.Namespace, pod.Name, "uid", events.ContainerFieldPath("app"), corev1.EventTypeWarning, "Unhealthy", m)
	}
	srv.SetEvents(rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock, 0, -1) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i > 500 {
			t.Fatal("server did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return sock
}

// Container-written text reaches the terminal escaped in describe, events and the status
// table, and exactly as written in -o json and -o yaml.
func TestContainerTextEscaped(t *testing.T) {
	pod := hostilePod()
	probe := "Readiness probe failed: " + pwned
	sock := serveWithEvents(t, pod, probe)

	for _, tc := range []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"describe", "web"}, []string{
			" " + pwnedEscaped + "\n",                        // the termination message
			"back-off restarting: " + pwnedEscaped + "\n",    // the waiting message
			"Readiness probe failed: " + pwnedEscaped + "\n", // the event
		}},
		{[]string{"events"}, []string{"Readiness probe failed: " + pwnedEscaped + "\n"}},
		{[]string{"events", "web"}, []string{"Readiness probe failed: " + pwnedEscaped + "\n"}},
	} {
		r := runCLI(t, "", append(tc.args, "--socket", sock)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
		if hasControl(r.stdout) {
			t.Errorf("%v printed control characters:\n%q", tc.args, r.stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, w, r.stdout)
			}
		}
	}

	// JSON and YAML stay exact.
	for _, format := range []string{"json", "yaml"} {
		r := runCLI(t, "", "status", "-o", format, "--socket", sock)
		if r.code != 0 {
			t.Fatalf("status -o %s: exit %d, stderr %q", format, r.code, r.stderr)
		}
		data := []byte(r.stdout)
		if format == "yaml" {
			var err error
			if data, err = yaml.YAMLToJSON(data); err != nil {
				t.Fatalf("status -o yaml: %v", err)
			}
		}
		var list corev1.PodList
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("status -o %s: %v", format, err)
		}
		if len(list.Items) != 1 || len(list.Items[0].Status.ContainerStatuses) != 1 {
			t.Fatalf("status -o %s: %d items", format, len(list.Items))
		}
		st := list.Items[0].Status.ContainerStatuses[0]
		if got := st.LastTerminationState.Terminated.Message; got != pwned {
			t.Errorf("status -o %s: termination message %q, want %q", format, got, pwned)
		}
		if got := st.State.Waiting.Message; got != "back-off restarting: "+pwned {
			t.Errorf("status -o %s: waiting message %q", format, got)
		}
	}
}

func TestStatusTableEscaped(t *testing.T) {
	pod := hostilePod()
	pod.Status.ContainerStatuses[0].State.Waiting.Reason = "Bad\x1b[2J"
	sock := serveWithEvents(t, pod)
	r := runCLI(t, "", "status", "-o", "wide", "--socket", sock)
	if r.code != 0 {
		t.Fatalf("status: exit %d, stderr %q", r.code, r.stderr)
	}
	if hasControl(r.stdout) || !strings.Contains(r.stdout, `Bad\x1b[2J`) {
		t.Errorf("status -o wide:\n%q", r.stdout)
	}
}
