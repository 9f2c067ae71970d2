package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// has checks that the exposition holds a sample line: name{labels} value.
func has(t *testing.T, body, line string) {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("no line %q in the scrape", line)
}

func TestScrape(t *testing.T) {
	m := New()
	m.PodStartDuration(2500 * time.Millisecond)
	m.PodStartDuration(90 * time.Second)
	m.SetPods(map[string]int{"Running": 3, "Pending": 1})
	m.SetContainers(map[string]int{"running": 4, "exited": 2})
	m.ContainerRestart()
	m.ContainerRestart()
	m.ProbeResult(ProbeLiveness, ProbeFailed)
	m.ProbeResult(ProbeReadiness, ProbeSuccessful)
	m.ProbeResult(ProbeReadiness, ProbeSuccessful)
	m.ImagePull(PullSuccess, 3*time.Second)
	m.ImagePull(PullFailure, 40*time.Millisecond)
	m.CNIOperation(CNIAdd, 20*time.Millisecond, nil)
	m.CNIOperation(CNIDel, 10*time.Millisecond, errors.New("plugin failed"))

	body := scrape(t, m)
	for _, line := range []string{
		// Histogram: both observations counted, in the kubelet's buckets.
		`minipod_pod_start_duration_seconds_count 2`,
		`minipod_pod_start_duration_seconds_sum 92.5`,
		`minipod_pod_start_duration_seconds_bucket{le="2"} 0`,
		`minipod_pod_start_duration_seconds_bucket{le="3"} 1`,
		`minipod_pod_start_duration_seconds_bucket{le="60"} 1`,
		`minipod_pod_start_duration_seconds_bucket{le="120"} 2`,
		`minipod_pod_start_duration_seconds_bucket{le="3600"} 2`,
		`minipod_pod_start_duration_seconds_bucket{le="+Inf"} 2`,
		`minipod_running_pods 3`,
		`minipod_pods{phase="Running"} 3`,
		`minipod_pods{phase="Pending"} 1`,
		`minipod_pods{phase="Failed"} 0`,
		`minipod_running_containers{container_state="running"} 4`,
		`minipod_running_containers{container_state="exited"} 2`,
		`minipod_running_containers{container_state="created"} 0`,
		`minipod_container_restarts_total 2`,
		`minipod_prober_probe_total{probe_type="Liveness",result="failed"} 1`,
		`minipod_prober_probe_total{probe_type="Readiness",result="successful"} 2`,
		`minipod_prober_probe_total{probe_type="Startup",result="successful"} 0`,
		`minipod_image_pulls_total{result="success"} 1`,
		`minipod_image_pulls_total{result="failure"} 1`,
		`minipod_image_pull_duration_seconds_count{result="success"} 1`,
		`minipod_image_pull_duration_seconds_bucket{result="success",le="5"} 1`,
		`minipod_image_pull_duration_seconds_bucket{result="success",le="1"} 0`,
		`minipod_cni_operations_duration_seconds_count{operation="add"} 1`,
		`minipod_cni_operations_duration_seconds_count{operation="del"} 1`,
		`minipod_cni_operations_errors_total{operation="del"} 1`,
		`minipod_cni_operations_errors_total{operation="add"} 0`,
		`# TYPE minipod_pod_start_duration_seconds histogram`,
		`# TYPE minipod_running_containers gauge`,
		`# TYPE minipod_container_restarts_total counter`,
	} {
		has(t, body, line)
	}
	// Go runtime and process collectors.
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds", "process_open_fds"} {
		if !regexp.MustCompile(`(?m)^` + name + ` `).MatchString(body) {
			t.Errorf("no %s in the scrape", name)
		}
	}
	// The handler counts its own use: the first scrape is in the second.
	has(t, scrape(t, m), `promhttp_metric_handler_requests_total{code="200"} 1`)
}

func TestSetPodsReplaces(t *testing.T) {
	m := New()
	m.SetPods(map[string]int{"Running": 2, "Weird": 1})
	m.SetContainers(map[string]int{"running": 2, "paused": 1})
	body := scrape(t, m)
	has(t, body, `minipod_pods{phase="Weird"} 1`)
	has(t, body, `minipod_running_containers{container_state="paused"} 1`)

	m.SetPods(map[string]int{"Pending": 1})
	m.SetContainers(map[string]int{})
	body = scrape(t, m)
	has(t, body, `minipod_running_pods 0`)
	has(t, body, `minipod_pods{phase="Running"} 0`)
	has(t, body, `minipod_pods{phase="Pending"} 1`)
	has(t, body, `minipod_running_containers{container_state="running"} 0`)
	if strings.Contains(body, "Weird") || strings.Contains(body, "paused") {
		t.Error("a label value no longer given is still exported")
	}
}

// Each Metrics has its own state: two daemons in one process (tests) do not mix.
func TestIndependent(t *testing.T) {
	a, b := New(), New()
	a.ContainerRestart()
	has(t, scrape(t, a), `minipod_container_restarts_total 1`)
	has(t, scrape(t, b), `minipod_container_restarts_total 0`)
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.PodStartDuration(time.Second)
	m.SetPods(map[string]int{"Running": 1})
	m.SetContainers(nil)
	m.ContainerRestart()
	m.ProbeResult(ProbeLiveness, ProbeFailed)
	m.ImagePull(PullSuccess, time.Second)
	m.CNIOperation(CNIAdd, time.Second, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("nil metrics handler: %d", rec.Code)
	}
}

func TestConcurrent(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				m.SetPods(map[string]int{"Running": j, "X": i})
				m.SetContainers(map[string]int{"running": j})
				m.ProbeResult(ProbeStartup, ProbeUnknown)
				m.PodStartDuration(time.Duration(j) * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("scrape during updates: %d", rec.Code)
			}
		}
	}()
	wg.Wait()
	has(t, scrape(t, m), `minipod_prober_probe_total{probe_type="Startup",result="unknown"} 800`)
}
