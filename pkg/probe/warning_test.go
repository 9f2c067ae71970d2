package probe

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// An HTTP probe redirected to another host succeeds, and each such attempt is reported as a
// warning (the kubelet's ProbeWarning event) before the verdict it brings.
func TestManagerWarnings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://0.0.0.0/", http.StatusFound)
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	spec := httpProbe("/", intstr.FromInt32(int32(port)))
	spec.PeriodSeconds = 1
	c := &corev1.Container{Name: "web", ReadinessProbe: spec, LivenessProbe: spec.DeepCopy()}

	var (
		mu  sync.Mutex
		got []string
	)
	record := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	m := NewManager(4)
	defer runManager(m)()
	m.Add("k", c, host, time.Time{}, nil, func(k Kind, r Result, msg string) {
		record(fmt.Sprintf("%v=%v", k, r))
	}, WithWarnings(func(k Kind, msg string) {
		if !strings.HasPrefix(msg, "Probe terminated redirects, Response body: ") || !strings.Contains(msg, "http://0.0.0.0/") {
			t.Errorf("warning message %q", msg)
		}
		record(fmt.Sprintf("%v warning", k))
	}))

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		warnings := 0
		for _, s := range got {
			if s == "Readiness warning" {
				warnings++
			}
		}
		seen := strings.Join(got, ", ")
		mu.Unlock()
		if warnings >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two readiness warnings not seen in 10 s: %s", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// The first readiness warning comes before the verdict it decides; liveness stays Success
	// (its initial verdict) and so reports no change, only warnings.
	first := map[string]int{}
	for i, s := range got {
		if _, ok := first[s]; !ok {
			first[s] = i
		}
	}
	if i, ok := first["Readiness=Success"]; !ok || i < first["Readiness warning"] {
		t.Errorf("readiness verdict missing or before its warning: %v", got)
	}
	if _, ok := first["Liveness warning"]; !ok {
		t.Errorf("no liveness warning: %v", got)
	}
	for _, s := range got {
		if strings.Contains(s, "Failure") || s == "Liveness=Success" {
			t.Errorf("unexpected verdict %s: %v", s, got)
		}
	}
	if r, _ := m.Result("k", Readiness); r != Success {
		t.Errorf("readiness verdict %v, want Success", r)
	}
}
