// Package metrics holds the daemon's Prometheus metrics, named after the kubelet's with the
// prefix minipod_, with the Go runtime and process metrics that client_golang's default
// collectors export, under the same names.
//
// It uses the standard library only: client_golang (with client_model, expfmt, procfs and
// their protobuf descriptors) cost the daemon about 1.3 MB of binary and 1.5 MB of resident
// memory (issue #7), for a dozen counters. Each Metrics has its own state (there is no global
// registry), and nothing runs in the background: all the work happens in a scrape.
//
// Every method is safe for concurrent use, and a nil *Metrics records nothing, so that the
// daemon can run without metrics.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const namespace = "minipod_"

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

// Reasons of minipod_image_garbage_collected_total: space as the kubelet's (usage above the
// high threshold), prune for minipodctl images prune.
const (
	GCReasonSpace = "space"
	GCReasonPrune = "prune"
)

// CNI operations.
const (
	CNIAdd   = "add"
	CNIDel   = "del"
	CNICheck = "check"
)

// Metrics are the daemon's metrics.
type Metrics struct {
	// mu guards every family's series: updates are rare (a few per pod and second at most),
	// so one lock is simpler than atomics and never contended.
	mu            sync.Mutex
	podStart      *family
	runningPods   *family
	pods          *family
	containers    *family
	restarts      *family
	probes        *family
	imagePulls    *family
	imagePullTime *family
	cniDuration   *family
	cniErrors     *family
	updates       *family
	rollbacks     *family
	prePullTime   *family
	imagesGC      *family
	logFilesGC    *family

	scrapes  atomic.Uint64 // promhttp_metric_handler_requests_total{code="200"}
	inFlight atomic.Int64  // promhttp_metric_handler_requests_in_flight
}

// New makes the metrics, with the series that exist from the start.
func New() *Metrics {
	m := &Metrics{
		podStart: newFamily("pod_start_duration_seconds", "histogram",
			"Duration in seconds from minipod seeing a pod for the first time to the pod starting to run.",
			// kubelet_pod_start_duration_seconds's buckets.
			[]float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}),
		runningPods: newFamily("running_pods", "gauge", "Number of pods in phase Running.", nil),
		pods:        newFamily("pods", "gauge", "Number of pods by phase.", nil, "phase"),
		containers: newFamily("running_containers", "gauge",
			"Number of containers by state (created, running, exited, unknown), as kubelet_running_containers.", nil, "container_state"),
		restarts: newFamily("container_restarts_total", "counter", "Cumulative number of container restarts.", nil),
		probes: newFamily("prober_probe_total", "counter",
			"Cumulative number of liveness, readiness and startup probes by result.", nil, "probe_type", "result"),
		imagePulls: newFamily("image_pulls_total", "counter",
			"Cumulative number of image pulls by result (success, failure).", nil, "result"),
		imagePullTime: newFamily("image_pull_duration_seconds", "histogram", "Duration in seconds of image pulls, by result.",
			// kubelet_image_pull_duration_seconds's buckets.
			[]float64{1, 5, 10, 20, 30, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}, "result"),
		cniDuration: newFamily("cni_operations_duration_seconds", "histogram",
			"Duration in seconds of CNI operations (add, del, check), failed ones included.",
			exponentialBuckets(0.005, 2.5, 10), "operation"), // 5 ms to about 19 s
		cniErrors: newFamily("cni_operations_errors_total", "counter", "Cumulative number of failed CNI operations.", nil, "operation"),
		updates: newFamily("pod_updates_total", "counter",
			"Cumulative number of running pods replaced by a new version of their manifest.", nil),
		rollbacks: newFamily("pod_rollbacks_total", "counter",
			"Cumulative number of failed pod updates rolled back to the last version that was Ready.", nil),
		prePullTime: newFamily("update_prepull_duration_seconds", "histogram",
			"Duration in seconds of fetching an update's images while the running version kept running.",
			[]float64{1, 5, 10, 20, 30, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}),
		imagesGC: newFamily("image_garbage_collected_total", "counter",
			"Total number of images garbage collected, by reason: space (disk usage over the high threshold, as the kubelet's) or prune (minipodctl images prune).", nil, "reason"),
		logFilesGC: newFamily("container_log_files_removed_total", "counter",
			"Total number of container log files removed to keep all logs under the node-wide cap (container-log-max-total-size).", nil),
	}
	// Series that exist from the start, so that rate() and absence alerts work at once.
	m.podStart.with()
	m.runningPods.with()
	m.restarts.with()
	m.updates.with()
	m.rollbacks.with()
	m.prePullTime.with()
	for _, p := range podPhases {
		m.pods.with(p)
	}
	for _, s := range containerStates {
		m.containers.with(s)
	}
	for _, t := range []string{ProbeLiveness, ProbeReadiness, ProbeStartup} {
		for _, r := range []string{ProbeSuccessful, ProbeFailed, ProbeUnknown} {
			m.probes.with(t, r)
		}
	}
	for _, r := range []string{PullSuccess, PullFailure} {
		m.imagePulls.with(r)
	}
	for _, op := range []string{CNIAdd, CNIDel} {
		m.cniErrors.with(op)
	}
	for _, r := range []string{GCReasonSpace, GCReasonPrune} {
		m.imagesGC.with(r)
	}
	m.logFilesGC.with()
	return m
}

// exponentialBuckets is client_golang's ExponentialBuckets: count bounds from start, each
// factor times the previous one.
func exponentialBuckets(start, factor float64, count int) []float64 {
	b := make([]float64, count)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// Handler serves the metrics in the Prometheus text format 0.0.4, and counts its own use
// (promhttp_metric_handler_requests_total) as promhttp did.
//
// Unlike promhttp it does not offer OpenMetrics: Prometheus asks for several formats and falls
// back to this one. Nor does it gzip the scrape, even when asked: the body is about 15 KB,
// mostly read over the local socket, and a flate compressor would allocate some hundred KB per
// scrape (or keep them pooled), against the daemon's memory budget.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inFlight.Add(1)
		defer m.inFlight.Add(-1)
		body := m.expose()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
		// Counted once served, as promhttp.InstrumentMetricHandler does: a scrape shows the
		// ones before it.
		m.scrapes.Add(1)
	})
}

// expose renders every family, sorted by name as client_golang does.
func (m *Metrics) expose() []byte {
	var w writer
	m.mu.Lock()
	for _, f := range []*family{m.podStart, m.runningPods, m.pods, m.containers, m.restarts,
		m.probes, m.imagePulls, m.imagePullTime, m.cniDuration, m.cniErrors, m.updates, m.rollbacks, m.prePullTime, m.imagesGC, m.logFilesGC} {
		f.write(&w)
	}
	m.mu.Unlock()
	writeGo(&w)
	writeProcess(&w)
	w.family("promhttp_metric_handler_requests_in_flight", "gauge", "Scrapes of this endpoint being answered now.")
	w.sample("promhttp_metric_handler_requests_in_flight", nil, nil, formatFloat(float64(m.inFlight.Load())))
	// This handler never answers 500 or 503 (promhttp's gathering errors and concurrency
	// limit), but the series stay, at 0, for the alerts and dashboards that use them.
	w.family("promhttp_metric_handler_requests_total", "counter", "Scrapes of this endpoint answered, by HTTP status code.")
	for _, c := range []struct {
		code string
		n    uint64
	}{{"200", m.scrapes.Load()}, {"500", 0}, {"503", 0}} {
		w.sample("promhttp_metric_handler_requests_total", []string{"code"}, []string{c.code}, strconv.FormatUint(c.n, 10))
	}
	return w.bytes()
}

// PodStartDuration observes the time from a pod's manifest being seen to the pod running.
func (m *Metrics) PodStartDuration(d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.podStart.with().observe(m.podStart.buckets, d.Seconds())
}

// SetPods sets the pod gauges from counts by phase (Pending, Running, ...). Phases absent from
// the map are 0; a phase outside the standard ones that is no longer given is removed.
func (m *Metrics) SetPods(byPhase map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	setAll(m.pods, byPhase, podPhases)
	m.runningPods.with().value = float64(byPhase["Running"])
}

// SetContainers sets minipod_running_containers from counts by state (created, running,
// exited, unknown), as SetPods does.
func (m *Metrics) SetContainers(byState map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	setAll(m.containers, byState, containerStates)
}

// setAll sets the one-label gauge f to counts: the standard labels always (0 when absent),
// others while present.
func setAll(f *family, counts map[string]int, standard []string) {
	for key, s := range f.series {
		if _, ok := counts[s.values[0]]; !ok && !slices.Contains(standard, s.values[0]) {
			delete(f.series, key)
		}
	}
	for _, l := range standard {
		f.with(l).value = float64(counts[l])
	}
	for l, n := range counts {
		f.with(l).value = float64(n)
	}
}

// ContainerRestart counts one container restart.
func (m *Metrics) ContainerRestart() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restarts.with().value++
}

// ProbeResult counts one probe: probeType Liveness, Readiness or Startup, result successful,
// failed or unknown.
func (m *Metrics) ProbeResult(probeType, result string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probes.with(probeType, result).value++
}

// ImagePull counts one image pull with its result (success or failure) and observes its
// duration.
func (m *Metrics) ImagePull(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.imagePulls.with(result).value++
	m.imagePullTime.with(result).observe(m.imagePullTime.buckets, d.Seconds())
}

// PodUpdate counts a running pod replaced by a new version.
func (m *Metrics) PodUpdate() { m.inc(func() *family { return m.updates }) }

// Rollback counts an update rolled back.
func (m *Metrics) Rollback() { m.inc(func() *family { return m.rollbacks }) }

// inc adds one to the family f returns (read only when m is not nil).
func (m *Metrics) inc(f func() *family) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f().with().value++
}

// PrePull observes how long an update's images took to fetch while the old version ran.
func (m *Metrics) PrePull(d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prePullTime.with().observe(m.prePullTime.buckets, d.Seconds())
}

// CNIOperation observes one CNI operation (add, del, check) and counts it as an error when err
// is not nil.
func (m *Metrics) CNIOperation(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cniDuration.with(op).observe(m.cniDuration.buckets, d.Seconds())
	if err != nil {
		m.cniErrors.with(op).value++
	}
}

// ImageGarbageCollected counts one image removed by garbage collection, with its reason
// (GCReasonSpace or GCReasonPrune).
func (m *Metrics) ImageGarbageCollected(reason string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.imagesGC.with(reason).value++
}

// LogFilesRemoved counts container log files removed to respect the node-wide cap.
func (m *Metrics) LogFilesRemoved(n int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logFilesGC.with().value += float64(n)
}

// family is one metric family (counter, gauge or histogram) and its series by label values.
type family struct {
	name, typ, help string
	labels          []string  // label names, sorted as client_golang exports them
	buckets         []float64 // histogram upper bounds, increasing, +Inf left implicit
	series          map[string]*series
}

// series is one labelled value of a family.
type series struct {
	values []string // label values, as family.labels
	value  float64  // counter or gauge value, histogram sum
	counts []uint64 // histogram: observations per bucket (not cumulative), the last for +Inf
	count  uint64   // histogram: observations
}

func newFamily(name, typ, help string, buckets []float64, labels ...string) *family {
	return &family{name: namespace + name, typ: typ, help: help, labels: labels, buckets: buckets, series: map[string]*series{}}
}

// with is the series with these label values, made at 0 if need be.
func (f *family) with(values ...string) *series {
	key := strings.Join(values, "\xff") // a byte that valid UTF-8 label values never hold
	s := f.series[key]
	if s == nil {
		s = &series{values: values}
		if f.typ == "histogram" {
			s.counts = make([]uint64, len(f.buckets)+1)
		}
		f.series[key] = s
	}
	return s
}

func (s *series) observe(buckets []float64, v float64) {
	// The first bucket whose upper bound is >= v (le is inclusive), or the +Inf one.
	i, _ := slices.BinarySearch(buckets, v)
	s.counts[i]++
	s.count++
	s.value += v
}

// write renders the family, its series sorted by label values as client_golang does.
func (f *family) write(w *writer) {
	w.family(f.name, f.typ, f.help)
	all := make([]*series, 0, len(f.series))
	for _, s := range f.series {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *series) int { return slices.Compare(a.values, b.values) })
	for _, s := range all {
		if f.typ != "histogram" {
			w.sample(f.name, f.labels, s.values, formatFloat(s.value))
			continue
		}
		labels := append(slices.Clip(f.labels), "le")
		values := append(slices.Clip(s.values), "")
		var cum uint64
		for i, c := range s.counts {
			cum += c
			values[len(values)-1] = "+Inf"
			if i < len(f.buckets) {
				values[len(values)-1] = formatFloat(f.buckets[i])
			}
			w.sample(f.name+"_bucket", labels, values, strconv.FormatUint(cum, 10))
		}
		w.sample(f.name+"_sum", f.labels, s.values, formatFloat(s.value))
		w.sample(f.name+"_count", f.labels, s.values, strconv.FormatUint(s.count, 10))
	}
}
