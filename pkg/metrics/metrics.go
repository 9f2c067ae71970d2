// Package metrics holds the daemon's Prometheus metrics, named after the kubelet's with the
// prefix minipod_, on a registry of their own (never the global one), with the Go runtime and
// process collectors.
//
// Every method is safe for concurrent use, and a nil *Metrics records nothing, so that the
// daemon can run without metrics.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "minipod"

// Pod phases and container states that are always exported, at 0 when there are none.
var (
	podPhases       = []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"}
	containerStates = []string{"created", "running", "exited", "unknown"}
)

// Probe types and results, as the kubelet's prober_probe_total labels them.
const (
	ProbeLiveness  = "Liveness"
	ProbeReadiness = "Readiness"
	ProbeStartup   = "Startup"

	ProbeSuccessful = "successful"
	ProbeFailed     = "failed"
	ProbeUnknown    = "unknown"
)

// Image pull results.
const (
	PullSuccess = "success"
	PullFailure = "failure"
)

// CNI operations.
const (
	CNIAdd   = "add"
	CNIDel   = "del"
	CNICheck = "check"
)

// Metrics are the daemon's metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry

	podStart       prometheus.Histogram
	runningPods    prometheus.Gauge
	pods           *prometheus.GaugeVec
	containers     *prometheus.GaugeVec
	restarts       prometheus.Counter
	probes         *prometheus.CounterVec
	imagePulls     *prometheus.CounterVec
	imagePullTime  *prometheus.HistogramVec
	cniDuration    *prometheus.HistogramVec
	cniErrors      *prometheus.CounterVec
	mu             sync.Mutex
	podLabels      map[string]bool // label values set by SetPods
	containerLabel map[string]bool // label values set by SetContainers
}

// New makes the metrics and registers them, with the Go and process collectors, on a new
// registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		podStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "pod_start_duration_seconds",
			Help:      "Duration in seconds from minipod seeing a pod for the first time to the pod starting to run.",
			// kubelet_pod_start_duration_seconds's buckets.
			Buckets: []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600},
		}),
		runningPods: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "running_pods",
			Help:      "Number of pods in phase Running.",
		}),
		pods: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "pods",
			Help:      "Number of pods by phase.",
		}, []string{"phase"}),
		containers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "running_containers",
			Help:      "Number of containers by state (created, running, exited, unknown), as kubelet_running_containers.",
		}, []string{"container_state"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "container_restarts_total",
			Help:      "Cumulative number of container restarts.",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "prober",
			Name:      "probe_total",
			Help:      "Cumulative number of liveness, readiness and startup probes by result.",
		}, []string{"probe_type", "result"}),
		imagePulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "image_pulls_total",
			Help:      "Cumulative number of image pulls by result (success, failure).",
		}, []string{"result"}),
		imagePullTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "image_pull_duration_seconds",
			Help:      "Duration in seconds of image pulls, by result.",
			// kubelet_image_pull_duration_seconds's buckets.
			Buckets: []float64{1, 5, 10, 20, 30, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600},
		}, []string{"result"}),
		cniDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "cni_operations_duration_seconds",
			Help:      "Duration in seconds of CNI operations (add, del, check), failed ones included.",
			Buckets:   prometheus.ExponentialBuckets(0.005, 2.5, 10), // 5 ms to about 19 s
		}, []string{"operation"}),
		cniErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "cni_operations_errors_total",
			Help:      "Cumulative number of failed CNI operations.",
		}, []string{"operation"}),
		podLabels:      map[string]bool{},
		containerLabel: map[string]bool{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.podStart, m.runningPods, m.pods, m.containers, m.restarts, m.probes,
		m.imagePulls, m.imagePullTime, m.cniDuration, m.cniErrors,
	)
	// Series that exist from the start, so that rate() and absence alerts work at once.
	for _, p := range podPhases {
		m.pods.WithLabelValues(p)
	}
	for _, s := range containerStates {
		m.containers.WithLabelValues(s)
	}
	for _, t := range []string{ProbeLiveness, ProbeReadiness, ProbeStartup} {
		for _, r := range []string{ProbeSuccessful, ProbeFailed, ProbeUnknown} {
			m.probes.WithLabelValues(t, r)
		}
	}
	for _, r := range []string{PullSuccess, PullFailure} {
		m.imagePulls.WithLabelValues(r)
	}
	for _, op := range []string{CNIAdd, CNIDel} {
		m.cniErrors.WithLabelValues(op)
	}
	return m
}

// Registry is the metrics' own registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats, and counts its own use
// (promhttp_metric_handler_requests_total).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
}

// PodStartDuration observes the time from a pod's manifest being seen to the pod running.
func (m *Metrics) PodStartDuration(d time.Duration) {
	if m == nil {
		return
	}
	m.podStart.Observe(d.Seconds())
}

// SetPods sets the pod gauges from counts by phase (Pending, Running, ...). Phases absent from
// the map are 0; a phase outside the standard ones that is no longer given is removed.
func (m *Metrics) SetPods(byPhase map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	setAll(m.pods, byPhase, podPhases, m.podLabels)
	m.runningPods.Set(float64(byPhase["Running"]))
}

// SetContainers sets minipod_running_containers from counts by state (created, running,
// exited, unknown), as SetPods does.
func (m *Metrics) SetContainers(byState map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	setAll(m.containers, byState, containerStates, m.containerLabel)
}

// setAll sets g to counts: the standard labels always (0 when absent), others while present.
func setAll(g *prometheus.GaugeVec, counts map[string]int, standard []string, extra map[string]bool) {
	for _, l := range standard {
		g.WithLabelValues(l).Set(float64(counts[l]))
	}
	isStandard := func(l string) bool {
		for _, s := range standard {
			if s == l {
				return true
			}
		}
		return false
	}
	for l, n := range counts {
		if !isStandard(l) {
			g.WithLabelValues(l).Set(float64(n))
			extra[l] = true
		}
	}
	for l := range extra {
		if _, ok := counts[l]; !ok {
			g.DeleteLabelValues(l)
			delete(extra, l)
		}
	}
}

// ContainerRestart counts one container restart.
func (m *Metrics) ContainerRestart() {
	if m == nil {
		return
	}
	m.restarts.Inc()
}

// ProbeResult counts one probe: probeType Liveness, Readiness or Startup, result successful,
// failed or unknown.
func (m *Metrics) ProbeResult(probeType, result string) {
	if m == nil {
		return
	}
	m.probes.WithLabelValues(probeType, result).Inc()
}

// ImagePull counts one image pull with its result (success or failure) and observes its
// duration.
func (m *Metrics) ImagePull(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.imagePulls.WithLabelValues(result).Inc()
	m.imagePullTime.WithLabelValues(result).Observe(d.Seconds())
}

// CNIOperation observes one CNI operation (add, del, check) and counts it as an error when err
// is not nil.
func (m *Metrics) CNIOperation(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.cniDuration.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.cniErrors.WithLabelValues(op).Inc()
	}
}
