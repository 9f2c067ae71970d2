package metrics

import (
	"bufio"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The whole scrape is valid text format for Prometheus's own parser, with the families,
// types and values client_golang exported. (expfmt is for the tests only: the daemon does not
// link it.)
func TestExpositionParses(t *testing.T) {
	m := New()
	m.PodStartDuration(2500 * time.Millisecond)
	m.PodStartDuration(time.Hour + time.Second) // +Inf bucket only
	m.SetPods(map[string]int{"Running": 3, "odd \"phase\"\\\nx": 1})
	m.ProbeResult(ProbeLiveness, ProbeFailed)
	m.ImagePull(PullSuccess, 3*time.Second)
	m.CNIOperation(CNICheck, 20*time.Millisecond, errors.New("x"))
	body := scrape(t, m)

	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	types := map[string]dto.MetricType{
		"minipod_pod_start_duration_seconds":      dto.MetricType_HISTOGRAM,
		"minipod_image_pull_duration_seconds":     dto.MetricType_HISTOGRAM,
		"minipod_cni_operations_duration_seconds": dto.MetricType_HISTOGRAM,
		"minipod_running_pods":                    dto.MetricType_GAUGE,
		"minipod_pods":                            dto.MetricType_GAUGE,
		"minipod_running_containers":              dto.MetricType_GAUGE,
		"minipod_container_restarts_total":        dto.MetricType_COUNTER,
		"minipod_prober_probe_total":              dto.MetricType_COUNTER,
		"minipod_image_pulls_total":               dto.MetricType_COUNTER,
		"minipod_cni_operations_errors_total":     dto.MetricType_COUNTER,
		"go_gc_duration_seconds":                  dto.MetricType_SUMMARY,
		"go_goroutines":                           dto.MetricType_GAUGE,
		"go_threads":                              dto.MetricType_GAUGE,
		"go_info":                                 dto.MetricType_GAUGE,
		"go_memstats_alloc_bytes":                 dto.MetricType_GAUGE,
		"go_memstats_alloc_bytes_total":           dto.MetricType_COUNTER,
		"go_memstats_heap_inuse_bytes":            dto.MetricType_GAUGE,
		"go_memstats_sys_bytes":                   dto.MetricType_GAUGE,
		"go_memstats_stack_inuse_bytes":           dto.MetricType_GAUGE,
		"go_memstats_last_gc_time_seconds":        dto.MetricType_GAUGE,
		"go_sched_gomaxprocs_threads":             dto.MetricType_GAUGE,
		"promhttp_metric_handler_requests_total":  dto.MetricType_COUNTER,
	}
	if runtime.GOOS == "linux" {
		for _, n := range []string{"process_resident_memory_bytes", "process_virtual_memory_bytes",
			"process_open_fds", "process_max_fds", "process_start_time_seconds", "process_virtual_memory_max_bytes"} {
			types[n] = dto.MetricType_GAUGE
		}
		types["process_cpu_seconds_total"] = dto.MetricType_COUNTER
	}
	for name, typ := range types {
		f := fams[name]
		if f == nil {
			t.Errorf("no family %s", name)
		} else if f.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, f.GetType(), typ)
		}
	}

	// A label value with a quote, a backslash and a newline comes back intact.
	var found bool
	for _, s := range fams["minipod_pods"].GetMetric() {
		found = found || s.GetLabel()[0].GetValue() == "odd \"phase\"\\\nx"
	}
	if !found {
		t.Error("escaped label value lost")
	}

	h := fams["minipod_pod_start_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 3603.5 || len(h.GetBucket()) != 26 {
		t.Errorf("pod start histogram: %v", h)
	} else if b, inf := h.GetBucket()[24], h.GetBucket()[25]; b.GetUpperBound() != 3600 || b.GetCumulativeCount() != 1 ||
		!math.IsInf(inf.GetUpperBound(), 1) || inf.GetCumulativeCount() != 2 {
		t.Errorf("last buckets: %v %v", b, inf)
	}
	if len(fams["go_gc_duration_seconds"].GetMetric()[0].GetSummary().GetQuantile()) != 5 {
		t.Error("go_gc_duration_seconds lacks its quantiles")
	}
	if v := fams["go_info"].GetMetric()[0].GetLabel()[0]; v.GetName() != "version" || v.GetValue() != runtime.Version() {
		t.Errorf("go_info: %v", v)
	}
	if runtime.GOOS == "linux" {
		gauge := func(n string) float64 { return fams[n].GetMetric()[0].GetGauge().GetValue() }
		if st := gauge("process_start_time_seconds"); math.Abs(st-float64(time.Now().Unix())) > 3600 {
			t.Errorf("process start time %v is not about now", st)
		}
		if rss := gauge("process_resident_memory_bytes"); rss < 1<<20 || rss > gauge("process_virtual_memory_bytes") {
			t.Errorf("resident memory %v", rss)
		}
		if fds := gauge("process_open_fds"); fds < 3 || fds > gauge("process_max_fds") {
			t.Errorf("open fds %v", fds)
		}
	}

	// What the parser lets through: families and series sorted, no series twice.
	var names, series []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		if n, ok := strings.CutPrefix(l, "# TYPE "); ok {
			names = append(names, strings.Fields(n)[0])
			continue
		}
		if !strings.HasPrefix(l, "#") {
			series = append(series, l[:strings.LastIndexByte(l, ' ')])
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("families not sorted: %v", names)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(series)))) != len(series) {
		t.Error("a series is written twice")
	}
	for _, f := range fams {
		values := func(m *dto.Metric) []string {
			var v []string
			for _, l := range m.GetLabel() {
				v = append(v, l.GetValue())
			}
			return v
		}
		if !slices.IsSortedFunc(f.GetMetric(), func(a, b *dto.Metric) int { return slices.Compare(values(a), values(b)) }) {
			t.Errorf("%s: series not sorted", f.GetName())
		}
	}
}

func TestEscaping(t *testing.T) {
	var w writer
	w.family("x", "gauge", "a \\ b\nc \"d\"")
	w.sample("x", []string{"l", "m"}, []string{"a \\ b\nc \"d\"", ""}, "1")
	want := "# HELP x a \\\\ b\\nc \"d\"\n# TYPE x gauge\nx{l=\"a \\\\ b\\nc \\\"d\\\"\",m=\"\"} 1\n"
	if got := string(w.bytes()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
