package metrics

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// writer renders metric families in the Prometheus text format 0.0.4. Each family is a chunk
// of its own, so that bytes can sort them by name.
type writer struct {
	chunks []chunk
}

type chunk struct {
	name string
	text []byte
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// family starts a family: its HELP and TYPE lines.
func (w *writer) family(name, typ, help string) {
	w.chunks = append(w.chunks, chunk{name: name})
	w.write("# HELP ", name, " ", helpEscaper.Replace(help), "\n# TYPE ", name, " ", typ, "\n")
}

// sample writes one sample line of the current family: name{label="value",...} value.
func (w *writer) sample(name string, labels, values []string, value string) {
	w.write(name)
	for i, l := range labels {
		sep := ","
		if i == 0 {
			sep = "{"
		}
		w.write(sep, l, `="`, valueEscaper.Replace(values[i]), `"`)
	}
	if len(labels) > 0 {
		w.write("}")
	}
	w.write(" ", value, "\n")
}

// write appends to the current family.
func (w *writer) write(s ...string) {
	c := &w.chunks[len(w.chunks)-1]
	for _, s := range s {
		c.text = append(c.text, s...)
	}
}

// single writes a family of one unlabelled sample.
func (w *writer) single(name, typ, help string, v float64) {
	w.family(name, typ, help)
	w.sample(name, nil, nil, formatFloat(v))
}

// bytes is the exposition, families sorted by name.
func (w *writer) bytes() []byte {
	slices.SortFunc(w.chunks, func(a, b chunk) int { return strings.Compare(a.name, b.name) })
	var out []byte
	for _, c := range w.chunks {
		out = append(out, c.text...)
	}
	return out
}

// formatFloat formats a value as client_golang does (shortest representation, +Inf, NaN).
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// goMetrics are the memstats-like metrics client_golang's Go collector exported, and the
// runtime/metrics ones it exported by default, under the same names. Each is the sum of the
// runtime/metrics samples listed with it, as client_golang has computed them since v1.12:
// runtime.ReadMemStats would stop the world on every scrape.
var goMetrics = []struct {
	name, typ, help string
	sum             []string
}{
	{"go_gc_gogc_percent", "gauge", "The garbage collector's GOGC: heap growth in percent that starts a collection.",
		[]string{"/gc/gogc:percent"}},
	{"go_gc_gomemlimit_bytes", "gauge", "The Go runtime's soft memory limit in bytes (GOMEMLIMIT); math.MaxInt64 when unset.",
		[]string{"/gc/gomemlimit:bytes"}},
	{"go_memstats_alloc_bytes", "gauge", "Bytes of heap objects now allocated.",
		[]string{"/memory/classes/heap/objects:bytes"}},
	{"go_memstats_alloc_bytes_total", "counter", "Bytes of heap objects allocated since the start, freed ones included.",
		[]string{"/gc/heap/allocs:bytes"}},
	{"go_memstats_buck_hash_sys_bytes", "gauge", "Bytes of the profiler's bucket hash table.",
		[]string{"/memory/classes/profiling/buckets:bytes"}},
	{"go_memstats_frees_total", "counter", "Heap objects freed since the start.",
		[]string{"/gc/heap/frees:objects", "/gc/heap/tiny/allocs:objects"}},
	{"go_memstats_gc_sys_bytes", "gauge", "Bytes of the garbage collector's metadata.",
		[]string{"/memory/classes/metadata/other:bytes"}},
	{"go_memstats_heap_alloc_bytes", "gauge", "Bytes of heap objects now allocated (as go_memstats_alloc_bytes).",
		[]string{"/memory/classes/heap/objects:bytes"}},
	{"go_memstats_heap_idle_bytes", "gauge", "Heap bytes in no span: free for reuse or returned to the OS.",
		[]string{"/memory/classes/heap/released:bytes", "/memory/classes/heap/free:bytes"}},
	{"go_memstats_heap_inuse_bytes", "gauge", "Heap bytes in spans that hold objects.",
		[]string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}},
	{"go_memstats_heap_objects", "gauge", "Heap objects now allocated.",
		[]string{"/gc/heap/objects:objects"}},
	{"go_memstats_heap_released_bytes", "gauge", "Heap bytes returned to the OS.",
		[]string{"/memory/classes/heap/released:bytes"}},
	{"go_memstats_heap_sys_bytes", "gauge", "Heap bytes mapped from the OS.",
		[]string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes", "/memory/classes/heap/released:bytes", "/memory/classes/heap/free:bytes"}},
	{"go_memstats_mallocs_total", "counter", "Heap objects allocated since the start.",
		[]string{"/gc/heap/allocs:objects", "/gc/heap/tiny/allocs:objects"}},
	{"go_memstats_mcache_inuse_bytes", "gauge", "Bytes of per-P allocation caches in use.",
		[]string{"/memory/classes/metadata/mcache/inuse:bytes"}},
	{"go_memstats_mcache_sys_bytes", "gauge", "Bytes mapped for per-P allocation caches.",
		[]string{"/memory/classes/metadata/mcache/inuse:bytes", "/memory/classes/metadata/mcache/free:bytes"}},
	{"go_memstats_mspan_inuse_bytes", "gauge", "Bytes of span structures in use.",
		[]string{"/memory/classes/metadata/mspan/inuse:bytes"}},
	{"go_memstats_mspan_sys_bytes", "gauge", "Bytes mapped for span structures.",
		[]string{"/memory/classes/metadata/mspan/inuse:bytes", "/memory/classes/metadata/mspan/free:bytes"}},
	{"go_memstats_next_gc_bytes", "gauge", "Heap size in bytes at which the next collection starts.",
		[]string{"/gc/heap/goal:bytes"}},
	{"go_memstats_other_sys_bytes", "gauge", "Bytes of other runtime allocations.",
		[]string{"/memory/classes/other:bytes"}},
	{"go_memstats_stack_inuse_bytes", "gauge", "Bytes of goroutine stacks taken from the heap.",
		[]string{"/memory/classes/heap/stacks:bytes"}},
	{"go_memstats_stack_sys_bytes", "gauge", "Bytes of stacks: goroutine stacks and the OS threads' own.",
		[]string{"/memory/classes/heap/stacks:bytes", "/memory/classes/os-stacks:bytes"}},
	{"go_memstats_sys_bytes", "gauge", "Bytes mapped from the OS by the Go runtime, in all.",
		[]string{"/memory/classes/total:bytes"}},
	{"go_sched_gomaxprocs_threads", "gauge", "GOMAXPROCS: how many threads may run Go code at once.",
		[]string{"/sched/gomaxprocs:threads"}},
}

// writeGo writes the Go runtime metrics of client_golang's Go collector.
func writeGo(w *writer) {
	var samples []metrics.Sample
	for _, g := range goMetrics {
		for _, name := range g.sum {
			samples = append(samples, metrics.Sample{Name: name})
		}
	}
	metrics.Read(samples) // one read, for a consistent snapshot
	i := 0
	for _, g := range goMetrics {
		var v uint64
		for range g.sum {
			if samples[i].Value.Kind() == metrics.KindUint64 { // else unknown to this Go: 0
				v += samples[i].Value.Uint64()
			}
			i++
		}
		w.single(g.name, g.typ, g.help, float64(v))
	}

	w.single("go_goroutines", "gauge", "Goroutines that exist now.", float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	w.single("go_threads", "gauge", "OS threads the Go runtime has made.", float64(threads))
	w.family("go_info", "gauge", "The Go version the daemon was built with, as a label.")
	w.sample("go_info", []string{"version"}, []string{runtime.Version()}, "1")

	// GC pauses, from the last 256 GCs at most, as client_golang reads them. ReadGCStats
	// takes the heap lock, it does not stop the world.
	stats := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&stats)
	w.single("go_memstats_last_gc_time_seconds", "gauge", "Unix time in seconds of the last garbage collection.",
		float64(stats.LastGC.UnixNano())/1e9)
	const gc = "go_gc_duration_seconds"
	w.family(gc, "summary", "Stop-the-world pauses of recent garbage collections, in seconds.")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		w.sample(gc, []string{"quantile"}, []string{q}, formatFloat(stats.PauseQuantiles[i].Seconds()))
	}
	w.sample(gc+"_sum", nil, nil, formatFloat(stats.PauseTotal.Seconds()))
	w.sample(gc+"_count", nil, nil, strconv.FormatInt(stats.NumGC, 10))
}

// userHZ is the unit of the times in /proc/self/stat: USER_HZ, 100 on every Linux
// architecture, as procfs assumes too.
const userHZ = 100

// writeProcess writes the metrics of client_golang's process collector, read from /proc as
// procfs did. Those that cannot be read (not Linux) are left out, as client_golang did.
func writeProcess(w *writer) {
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The command name, in parentheses, may hold spaces and parentheses: the fields
		// follow the last ')'. f[0] is field 3 of proc_pid_stat(5), state.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 21 {
			utime, stime, vsize, rss := parse(f[11]), parse(f[12]), parse(f[20]), parse(f[21])
			w.single("process_cpu_seconds_total", "counter", "CPU time (user and system) the daemon has used, in seconds.", (utime+stime)/userHZ)
			w.single("process_virtual_memory_bytes", "gauge", "The daemon's virtual memory size in bytes.", vsize)
			w.single("process_resident_memory_bytes", "gauge", "The daemon's resident memory (RSS) in bytes.", rss*float64(os.Getpagesize()))
		}
	}
	if start, err := startTime(); err == nil {
		w.single("process_start_time_seconds", "gauge", "Unix time in seconds when the daemon started.", start)
	}
	if n, err := openFDs(); err == nil {
		w.single("process_open_fds", "gauge", "File descriptors the daemon has open.", float64(n))
	}
	if limits, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, l := range strings.Split(string(limits), "\n") {
			// "Max open files            1024                 524288               files"
			if v, ok := strings.CutPrefix(l, "Max open files "); ok {
				w.single("process_max_fds", "gauge", "The daemon's limit on open file descriptors.", parseLimit(v))
			}
			if v, ok := strings.CutPrefix(l, "Max address space "); ok {
				w.single("process_virtual_memory_max_bytes", "gauge", "The daemon's limit on virtual memory in bytes.", parseLimit(v))
			}
		}
	}
}

// startTime is the process's start time in seconds since the epoch: the boot time (btime in
// /proc/stat) plus the start time since boot in /proc/self/stat (field 22). It never changes,
// and /proc/stat is costly to make on machines with many CPUs and interrupts: read it once.
var startTime = sync.OnceValues(func() (float64, error) {
	sys, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	_, btime, _ := strings.Cut(string(sys), "\nbtime ")
	btime, _, _ = strings.Cut(btime, "\n")
	boot, err := strconv.ParseFloat(btime, 64)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(self[strings.LastIndexByte(string(self), ')')+1:]))
	if len(f) < 20 {
		return 0, os.ErrInvalid
	}
	return boot + parse(f[19])/userHZ, nil
})

// openFDs counts the entries of /proc/self/fd: since Linux 6.2 its size, else by listing it
// (the count then includes the directory's own descriptor, as procfs's did).
func openFDs() (int, error) {
	if fi, err := os.Stat("/proc/self/fd"); err == nil && fi.Size() > 0 {
		return int(fi.Size()), nil
	}
	fds, err := os.ReadDir("/proc/self/fd")
	return len(fds), err
}

// parse is a number of /proc, 0 if it is not one (that never happens on Linux).
func parse(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// parseLimit is the soft limit of a /proc/self/limits line, after its name; unlimited is
// 2^64-1, as procfs had it.
func parseLimit(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	if f[0] == "unlimited" {
		return float64(^uint64(0))
	}
	return parse(f[0])
}
