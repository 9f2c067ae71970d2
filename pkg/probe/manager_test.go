package probe

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// script is a fake container: exec probes run commands named after the probe kind, and the
// answer of each kind is set by the test. It records when each kind was run.
type script struct {
	t0 time.Time

	mu      sync.Mutex
	answer  map[string]int   // command -> exit code (default 0); -1: exec error
	runs    map[string][]int // command -> seconds since t0 of each run
	events  []string         // "<sec>s Kind=Result"
	running atomic.Int32
	peak    atomic.Int32
	hold    time.Duration // how long each exec takes
}

func newScript() *script {
	return &script{t0: time.Now(), answer: map[string]int{}, runs: map[string][]int{}}
}

func (s *script) since() int { return int(time.Since(s.t0) / time.Second) }

func (s *script) set(cmd string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer[cmd] = code
}

func (s *script) exec(ctx context.Context, cmd []string) (int, []byte, error) {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	s.mu.Lock()
	s.runs[cmd[0]] = append(s.runs[cmd[0]], s.since())
	code := s.answer[cmd[0]]
	hold := s.hold
	s.mu.Unlock()
	if hold > 0 {
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return -1, nil, ctx.Err()
		}
	}
	if code < 0 {
		return -1, nil, fmt.Errorf("exec failed")
	}
	return code, []byte(fmt.Sprintf("%s exited %d", cmd[0], code)), nil
}

func (s *script) onChange(k Kind, r Result, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("%ds %v=%v", s.since(), k, r))
}

func (s *script) runsOf(cmd string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.runs[cmd])
}

func (s *script) eventList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func execProbeSpec(cmd string, initialDelay, period, success, failure int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}},
		InitialDelaySeconds: initialDelay,
		TimeoutSeconds:      1,
		PeriodSeconds:       period,
		SuccessThreshold:    success,
		FailureThreshold:    failure,
	}
}

// runManager starts m.Run in the bubble and returns a function that stops it and waits.
func runManager(m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

// at sleeps until sec seconds after s.t0 and lets the bubble settle.
func (s *script) at(sec int) {
	time.Sleep(time.Until(s.t0.Add(time.Duration(sec) * time.Second)))
	synctest.Wait()
}

func wantInts(t *testing.T, what string, got, want []int) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("events: got %q, want %q", got, want)
	}
}

func TestManagerLivenessDelayPeriodThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{Name: "app", LivenessProbe: execProbeSpec("live", 5, 10, 1, 3)}
		s.set("live", 1)
		// The container started 2s ago: the first attempt is 5s after it started.
		m.Add("k", c, "10.0.0.1", s.t0.Add(-2*time.Second), s.exec, s.onChange)
		if r, ok := m.Result("k", Liveness); !ok || r != Success {
			t.Fatalf("initial liveness %v %v", r, ok)
		}
		s.at(100)
		wantInts(t, "liveness runs", s.runsOf("live"), []int{3, 13, 23})
		wantEvents(t, s.eventList(), "23s Liveness=Failure")
		if r, _ := m.Result("k", Liveness); r != Failure {
			t.Fatalf("liveness %v", r)
		}
	})
}

func TestManagerLivenessRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{LivenessProbe: execProbeSpec("live", 0, 1, 1, 3)}
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		s.at(0)
		s.set("live", 1) // two failures, then success again: no verdict change
		s.at(2)
		s.set("live", 0)
		s.at(10)
		wantInts(t, "liveness runs", s.runsOf("live"), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
		wantEvents(t, s.eventList())
	})
}

func TestManagerReadinessThresholds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{ReadinessProbe: execProbeSpec("ready", 0, 2, 2, 2)}
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		if r, _ := m.Result("k", Readiness); r != Failure {
			t.Fatalf("initial readiness %v", r)
		}
		s.at(3)
		// Runs at 0 and 2: two successes make it ready.
		wantEvents(t, s.eventList(), "2s Readiness=Success")
		s.set("ready", 1)
		s.at(5) // failure at 4
		s.set("ready", 0)
		s.at(7) // success at 6 breaks the run
		s.set("ready", 1)
		s.at(11) // failures at 8 and 10: not ready
		s.set("ready", 0)
		s.at(15) // successes at 12 and 14: ready again
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{0, 2, 4, 6, 8, 10, 12, 14})
		wantEvents(t, s.eventList(), "2s Readiness=Success", "10s Readiness=Failure", "14s Readiness=Success")
	})
}

func TestManagerUnknownIsRetriedNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{LivenessProbe: execProbeSpec("live", 0, 10, 1, 1)}
		s.set("live", -1)
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		s.at(25)
		// Each period the attempt is tried three times, and never decides anything.
		wantInts(t, "liveness runs", s.runsOf("live"), []int{0, 0, 0, 10, 10, 10, 20, 20, 20})
		wantEvents(t, s.eventList())
	})
}

func TestManagerStartupGates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{
			StartupProbe:   execProbeSpec("start", 1, 2, 1, 10),
			LivenessProbe:  execProbeSpec("live", 0, 10, 1, 3),
			ReadinessProbe: execProbeSpec("ready", 8, 5, 1, 3),
		}
		s.set("start", 1)
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		if r, _ := m.Result("k", Startup); r != Unknown {
			t.Fatalf("initial startup %v", r)
		}
		s.at(4) // startup runs at 1 and 3 and fails
		s.set("start", 0)
		s.at(30)
		// Startup succeeds at 5 and is never run again; liveness starts right then, readiness
		// when its own initial delay (8s after the container started) is over.
		wantInts(t, "startup runs", s.runsOf("start"), []int{1, 3, 5})
		wantInts(t, "liveness runs", s.runsOf("live"), []int{5, 15, 25})
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{8, 13, 18, 23, 28})
		wantEvents(t, s.eventList(), "5s Startup=Success", "8s Readiness=Success")
	})
}

func TestManagerStartupFailsForGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{
			StartupProbe:   execProbeSpec("start", 0, 1, 1, 3),
			LivenessProbe:  execProbeSpec("live", 0, 1, 1, 3),
			ReadinessProbe: execProbeSpec("ready", 0, 1, 1, 3),
		}
		s.set("start", 1)
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		s.at(20)
		wantInts(t, "startup runs", s.runsOf("start"), []int{0, 1, 2})
		wantInts(t, "liveness runs", s.runsOf("live"), nil)
		wantInts(t, "readiness runs", s.runsOf("ready"), nil)
		wantEvents(t, s.eventList(), "2s Startup=Failure")
	})
}

func TestManagerRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		s.hold = 500 * time.Millisecond
		m := NewManager(8) // a group of its own may hold 2 slots: both attempts are in flight at once
		defer runManager(m)()
		c := &corev1.Container{
			LivenessProbe:  execProbeSpec("live", 0, 1, 1, 1),
			ReadinessProbe: execProbeSpec("ready", 0, 1, 1, 1),
		}
		s.set("live", 1)
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		// Remove while the first attempts are in flight: they are cancelled, nothing is reported.
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if n := s.running.Load(); n != 2 {
			t.Fatalf("%d attempts in flight, want 2", n)
		}
		m.Remove("k")
		synctest.Wait()
		if n := s.running.Load(); n != 0 {
			t.Fatalf("%d attempts still in flight after Remove", n)
		}
		s.at(30)
		wantInts(t, "liveness runs", s.runsOf("live"), []int{0})
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{0})
		wantEvents(t, s.eventList())
		if _, ok := m.Result("k", Liveness); ok {
			t.Fatal("removed key still has a result")
		}
		m.Remove("k") // again: no-op
	})
}

func TestManagerRemoveFromCallbackAndReAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(2)
		defer runManager(m)()
		c := &corev1.Container{LivenessProbe: execProbeSpec("live", 0, 1, 1, 2)}
		s.set("live", 1)
		restarts := 0
		var onChange func(k Kind, r Result, msg string)
		onChange = func(k Kind, r Result, msg string) {
			s.onChange(k, r, msg)
			if k == Liveness && r == Failure && restarts < 2 {
				// What the pod worker does: restart the container and probe the new one.
				restarts++
				m.Remove("k")
				m.Add("k", c, "", time.Now().Add(time.Second), s.exec, onChange)
			}
		}
		m.Add("k", c, "", s.t0, s.exec, onChange)
		s.at(20)
		wantInts(t, "liveness runs", s.runsOf("live"), []int{0, 1, 2, 3, 4, 5})
		wantEvents(t, s.eventList(), "1s Liveness=Failure", "3s Liveness=Failure", "5s Liveness=Failure")
	})
}

func TestManagerAddBeforeRunAndNoProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(0)
		c := &corev1.Container{ReadinessProbe: execProbeSpec("ready", 0, 10, 1, 3)}
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		m.Add("none", &corev1.Container{}, "", s.t0, s.exec, s.onChange)
		if _, ok := m.Result("none", Readiness); ok {
			t.Fatal("a container without probes has a readiness result")
		}
		time.Sleep(5 * time.Second)
		defer runManager(m)()
		s.at(6)
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{5})
		wantEvents(t, s.eventList(), "5s Readiness=Success")
	})
}

func TestManagerManyProbesFewGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			containers  = 1000
			concurrency = 8
		)
		s := newScript()
		s.hold = 10 * time.Millisecond
		base := runtime.NumGoroutine()
		m := NewManager(concurrency)
		defer runManager(m)()
		for i := range containers {
			c := &corev1.Container{
				LivenessProbe:  execProbeSpec("live", 0, 10, 1, 3),
				ReadinessProbe: execProbeSpec("ready", 0, 10, 1, 3),
			}
			m.Add(fmt.Sprintf("ns/pod-%d/uid/app/0", i), c, "", s.t0, s.exec, s.onChange)
		}
		maxG := 0
		for range 150 {
			time.Sleep(100 * time.Millisecond)
			maxG = max(maxG, runtime.NumGoroutine())
		}
		synctest.Wait()
		// 2000 probes of 10ms each, 8 at a time: each round takes 2.5s of the 10s period, so
		// in 15s there are two rounds (at 0s and 10s).
		if n := len(s.runsOf("live")) + len(s.runsOf("ready")); n != 2*2*containers {
			t.Errorf("%d attempts in 15s, want %d", n, 2*2*containers)
		}
		if p := s.peak.Load(); p != concurrency {
			t.Errorf("peak concurrent attempts %d, want %d", p, concurrency)
		}
		// The scheduler and the workers, plus a little slack.
		if extra := maxG - base; extra > 1+concurrency+2 {
			t.Errorf("%d goroutines for %d probes (base %d)", extra, 2*containers, base)
		}
		t.Logf("%d probes: at most %d goroutines above the base of %d", 2*containers, maxG-base, base)
		ready := 0
		for _, e := range s.eventList() {
			if e[len(e)-len("Readiness=Success"):] == "Readiness=Success" {
				ready++
			}
		}
		if ready != containers {
			t.Errorf("%d containers became ready, want %d", ready, containers)
		}
	})
}

func TestNextTick(t *testing.T) {
	o := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := 10 * time.Second
	for _, c := range []struct {
		origin, t, want time.Time
	}{
		{time.Time{}, o.Add(3 * time.Second), o.Add(3 * time.Second)}, // no ticks
		{o, o.Add(-time.Second), o.Add(-time.Second)},                 // before they began
		{o, o, o}, // on a tick
		{o, o.Add(300 * time.Millisecond), o.Add(10 * time.Second)}, // just after one
		{o, o.Add(10 * time.Second), o.Add(10 * time.Second)},       // on a later one
		{o, o.Add(25 * time.Second), o.Add(30 * time.Second)},       // between two
	} {
		if got := nextTick(c.origin, p, c.t); !got.Equal(c.want) {
			t.Errorf("nextTick(%v, %v) = %v, want %v", c.origin, c.t.Sub(o), got.Sub(o), c.want.Sub(o))
		}
	}
}

// With jitter (containers adopted at a restart), probes' ticks are spread over the period by
// their keys instead of all falling due together; without it, the first probe comes on the
// pod's tick.
func TestFirstDueTicks(t *testing.T) {
	o := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	spec := &corev1.Probe{PeriodSeconds: 10}
	ps := &probeState{spec: spec}
	fresh := &entry{key: "a", started: o.Add(300 * time.Millisecond), ticks: o}
	if got := fresh.firstDue(ps, o.Add(300*time.Millisecond)); !got.Equal(o.Add(10 * time.Second)) {
		t.Errorf("fresh container: first probe at %v, want the next tick at 10s", got.Sub(o))
	}
	seen := map[time.Duration]bool{}
	for _, key := range []string{"a", "b", "c", "d", "e", "f"} {
		e := &entry{key: key, started: o.Add(-time.Hour), ticks: o, jitter: true}
		d := e.firstDue(ps, o).Sub(o)
		if d < 0 || d >= 10*time.Second {
			t.Errorf("%s: first probe %v after adoption, want within one period", key, d)
		}
		if again := e.firstDue(ps, o).Sub(o); again != d {
			t.Errorf("%s: jitter not stable: %v then %v", key, d, again)
		}
		seen[d] = true
	}
	if len(seen) < 4 {
		t.Errorf("6 adopted containers' probes fall due at only %d instants: not spread", len(seen))
	}
}

// Once the startup probe succeeds, readiness runs at once (the kubelet triggers it when it
// computes the status of a started container that is not ready), not on its next tick, and then
// falls back in step with its ticks; liveness waits for its tick. As container_probe.go's
// "should be ready immediately after startupProbe succeeds".
func TestManagerReadinessAtOnceAfterStartup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{
			StartupProbe:   execProbeSpec("start", 0, 5, 1, 120),
			LivenessProbe:  execProbeSpec("live", 0, 20, 1, 3),
			ReadinessProbe: execProbeSpec("ready", 0, 30, 1, 3),
		}
		s.set("start", 1)
		m.Add("k", c, "", s.t0.Add(time.Second), s.exec, s.onChange, WithTicks(s.t0, false))
		s.at(12)
		s.set("start", 0)
		s.at(65)
		wantInts(t, "startup runs", s.runsOf("start"), []int{5, 10, 15})
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{15, 30, 60})
		wantInts(t, "liveness runs", s.runsOf("live"), []int{20, 40, 60})
		wantEvents(t, s.eventList(), "15s Startup=Success", "15s Readiness=Success")
	})
}

// Within its initial delay, readiness is not run at the startup verdict: it waits for its
// first tick after the delay.
func TestManagerReadinessDelayAfterStartup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{
			StartupProbe:   execProbeSpec("start", 0, 5, 1, 120),
			ReadinessProbe: execProbeSpec("ready", 20, 30, 1, 3),
		}
		m.Add("k", c, "", s.t0, s.exec, s.onChange, WithTicks(s.t0, false))
		s.at(40)
		wantInts(t, "startup runs", s.runsOf("start"), []int{0})
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{30})
	})
}

// When a pod begins terminating, liveness and startup stop and readiness runs on, reporting to
// the callbacks Handoff gives.
func TestManagerStopAndHandoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		m := NewManager(4)
		defer runManager(m)()
		c := &corev1.Container{
			LivenessProbe:  execProbeSpec("live", 0, 2, 1, 1),
			ReadinessProbe: execProbeSpec("ready", 0, 2, 1, 1),
		}
		m.Add("k", c, "", s.t0, s.exec, s.onChange)
		s.at(5)
		m.Stop("k", Liveness, Startup)
		var handed []string
		var mu sync.Mutex
		if !m.Handoff("k", func(k Kind, r Result, msg string) {
			mu.Lock()
			handed = append(handed, fmt.Sprintf("%ds %v=%v", s.since(), k, r))
			mu.Unlock()
		}, func(k Kind, msg string) {
			mu.Lock()
			handed = append(handed, fmt.Sprintf("%ds %v failed", s.since(), k))
			mu.Unlock()
		}, nil) {
			t.Fatal("Handoff found no container")
		}
		s.set("live", 1)
		s.set("ready", 1)
		s.at(9)
		wantInts(t, "liveness runs", s.runsOf("live"), []int{0, 2, 4})
		wantInts(t, "readiness runs", s.runsOf("ready"), []int{0, 2, 4, 6, 8})
		wantEvents(t, s.eventList(), "0s Readiness=Success")
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"6s Readiness failed", "6s Readiness=Failure", "8s Readiness failed"}; !slices.Equal(handed, want) {
			t.Errorf("handed over: got %q, want %q", handed, want)
		}
		if r, _ := m.Result("k", Liveness); r != Success {
			t.Errorf("liveness verdict %v after Stop, want Success kept", r)
		}
		if m.Handoff("other", nil, nil, nil) {
			t.Error("Handoff of an unknown key reported true")
		}
	})
}
