package pod

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minipod/minipod/pkg/events"
)

// An HTTP probe redirected to another host succeeds with a warning: the container becomes
// ready, and a Warning event with reason ProbeWarning says so, worded as the kubelet's prober
// words it.
func TestWorkerProbeWarningEvent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://0.0.0.0/", http.StatusFound)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())

	rt := newFakeRuntime()
	m := testManager(t, rt)
	a := busybox("a")
	a.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: u.Hostname(), Path: "/", Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
	}
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", a)})
	waitFor(t, m, "a ready", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
	})
	want := `Readiness probe warning: Probe terminated redirects, Response body: <a href="http://0.0.0.0/">Found</a>.`
	deadline := time.Now().Add(5 * time.Second)
	for {
		var seen []string
		for _, e := range m.cfg.Events.List("default", "web") {
			if e.Reason == events.ReasonProbeWarning && e.Type == events.Warning && strings.HasPrefix(e.Message, want) &&
				e.FieldPath == events.ContainerFieldPath("a") {
				return
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ProbeWarning event %q; events: %q", want, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
