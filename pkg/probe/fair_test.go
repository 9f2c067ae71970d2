package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// fairExec is a fake runtime for the fairness tests. A command whose name starts with "hang"
// never answers (the attempt ends at its timeoutSeconds); any other answers 0 after hold. It
// records when each command started and how many attempts were in flight, and catches a
// command run twice at once (each probe of a test has a command of its own).
type fairExec struct {
	t0   time.Time
	hold time.Duration

	mu       sync.Mutex
	starts   map[string][]time.Duration // command -> start times since t0
	inFlight map[string]int
	twice    []string
	running  int
	peak     int
}

func newFairExec(hold time.Duration) *fairExec {
	return &fairExec{t0: time.Now(), hold: hold, starts: map[string][]time.Duration{}, inFlight: map[string]int{}}
}

func (f *fairExec) exec(ctx context.Context, cmd []string) (int, []byte, error) {
	name := cmd[0]
	f.mu.Lock()
	f.starts[name] = append(f.starts[name], time.Since(f.t0))
	if f.inFlight[name]++; f.inFlight[name] > 1 {
		f.twice = append(f.twice, fmt.Sprintf("%s at %v", name, time.Since(f.t0)))
	}
	f.running++
	f.peak = max(f.peak, f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[name]--
		f.running--
		f.mu.Unlock()
	}()
	wait := f.hold
	if strings.HasPrefix(name, "hang") {
		wait = time.Hour
	}
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return -1, nil, ctx.Err()
		}
	}
	return 0, []byte("ok"), nil
}

func (f *fairExec) startsOf(cmd string) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts[cmd])
}

// check fails the test if a probe ran twice at once.
func (f *fairExec) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.twice) > 0 {
		t.Errorf("probes run twice at once: %v", f.twice)
	}
}

// fairProbe is an exec probe running cmd every period seconds with the given timeout; it never
// reaches its failure threshold in these tests, so that failing liveness probes go on.
func fairProbe(cmd string, period, timeout int32) *corev1.Probe {
	p := execProbeSpec(cmd, 0, period, 1, 1000)
	p.TimeoutSeconds = timeout
	return p
}

// addSlowPod adds a pod of n containers whose readiness and liveness probes (period 1 s,
// timeout 10 s) never answer. grouped: the pod is one group; otherwise each container is.
func addSlowPod(m *Manager, f *fairExec, pod string, n int, grouped bool) {
	for i := range n {
		c := &corev1.Container{
			Name:           fmt.Sprintf("c%d", i),
			ReadinessProbe: fairProbe(fmt.Sprintf("hang-%s-%d-ready", pod, i), 1, 10),
			LivenessProbe:  fairProbe(fmt.Sprintf("hang-%s-%d-live", pod, i), 1, 10),
		}
		var opts []AddOption
		if grouped {
			opts = append(opts, WithGroup(pod))
		}
		m.Add(fmt.Sprintf("%s/%s", pod, c.Name), c, "", f.t0, f.exec, nil, opts...)
	}
}

// lateness is how much later than its period's grid (0, p, 2p, ...) each start was, at most.
func lateness(starts []time.Duration, p time.Duration) time.Duration {
	var late time.Duration
	for i, s := range starts {
		late = max(late, s-time.Duration(i)*p)
	}
	return late
}

// Pods whose probes hang until their timeout do not make another pod's probes late: the other
// pod's readiness and liveness probes (period 1 s), added while the slow pods' probes hang,
// run on time until 30 s, and no slow probe starves.
func TestManagerSlowPodsDoNotDelayOthers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		slowPods    int
		containers  int // per slow pod, each with two probes that hang
		grouped     bool
		fastAt      time.Duration // when the fast pod is added
		wantLate    time.Duration // how late the fast pod's attempts may start, at most
	}{
		// Each slow pod holds 2 of the 8 slots at most: the fast pod always finds one.
		{name: "one slow pod", concurrency: 8, slowPods: 1, containers: 16, grouped: true, fastAt: 5 * time.Second},
		{name: "three slow pods", concurrency: 8, slowPods: 3, containers: 4, grouped: true, fastAt: 5 * time.Second},
		// More slow groups than slots: they used more slot time than the fast pod, which gets
		// the next free slot, a slowAfter away at most.
		{name: "more slow pods than slots", concurrency: 8, slowPods: 8, containers: 4, grouped: true, fastAt: 5 * time.Second, wantLate: slowAfter},
		{name: "slow containers without a group", concurrency: 8, slowPods: 1, containers: 16, fastAt: 5 * time.Second, wantLate: slowAfter},
		{name: "one slot", concurrency: 1, slowPods: 1, containers: 4, grouped: true, fastAt: 5 * time.Second, wantLate: slowAfter},
		// Seventeen new groups due at once and 8 slots: the last waits for two rounds of the
		// others, then runs on time.
		{name: "all due together", concurrency: 8, slowPods: 1, containers: 16, wantLate: 2 * slowAfter},
		{name: "all due together, grouped", concurrency: 8, slowPods: 8, containers: 4, grouped: true, wantLate: slowAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFairExec(0)
				m := NewManager(tc.concurrency)
				defer runManager(m)()
				for i := range tc.slowPods {
					addSlowPod(m, f, fmt.Sprintf("slow%d", i), tc.containers, tc.grouped)
				}
				time.Sleep(tc.fastAt)
				// Added last: among the probes due with it, its seq is the highest.
				fast := &corev1.Container{
					Name:           "app",
					ReadinessProbe: fairProbe("ready", 1, 1),
					LivenessProbe:  fairProbe("live", 1, 1),
				}
				m.Add("fast/app", fast, "", time.Now(), f.exec, nil, WithGroup("fast"))
				time.Sleep(30*time.Second - tc.fastAt - time.Millisecond)
				synctest.Wait()

				// Once a second, less the periods a late start skipped (a late probe runs once
				// and then again at once, as a ticker would).
				want := int((30*time.Second - tc.fastAt - tc.wantLate) / time.Second)
				for _, cmd := range []string{"ready", "live"} {
					starts := f.startsOf(cmd)
					if len(starts) < want {
						t.Errorf("%s ran %d times until 30 s, want %d at least: %v", cmd, len(starts), want, starts)
					}
					for i := range starts {
						starts[i] -= tc.fastAt
					}
					if late := lateness(starts, time.Second); late > tc.wantLate {
						t.Errorf("%s started up to %v late, want at most %v: %v", cmd, late, tc.wantLate, starts)
					}
				}
				// No slow probe starves (TestManagerNoStarvationInGroup looks closer).
				for i := range tc.slowPods {
					for j := range tc.containers {
						for _, k := range []string{"ready", "live"} {
							cmd := fmt.Sprintf("hang-slow%d-%d-%s", i, j, k)
							if n := len(f.startsOf(cmd)); n < 1 {
								t.Errorf("%s ran %d times in 30 s: %v", cmd, n, f.startsOf(cmd))
							}
						}
					}
				}
				f.check(t)
			})
		})
	}
}

// A group gets as many slots as its cap allows, and a container of its own up to its cap.
func TestManagerGroupCap(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		grouped     bool
		wantPeak    int
		wantLast    time.Duration // when the last of the ten attempts starts
	}{
		{name: "a group holds a quarter", concurrency: 8, grouped: true, wantPeak: 2, wantLast: 1200 * time.Millisecond},
		{name: "a larger pool, a larger share", concurrency: 16, grouped: true, wantPeak: 4, wantLast: 600 * time.Millisecond},
		{name: "one slot, one group", concurrency: 1, grouped: true, wantPeak: 1, wantLast: 2700 * time.Millisecond},
		{name: "containers on their own", concurrency: 8, wantPeak: 8, wantLast: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Ten probes due together that each take 300 ms, well below slowAfter.
				f := newFairExec(300 * time.Millisecond)
				m := NewManager(tc.concurrency)
				defer runManager(m)()
				for i := range 10 {
					c := &corev1.Container{ReadinessProbe: fairProbe(fmt.Sprintf("r%d", i), 10, 1)}
					var opts []AddOption
					if tc.grouped {
						opts = append(opts, WithGroup("pod"))
					}
					m.Add(fmt.Sprintf("pod/c%d", i), c, "", f.t0, f.exec, nil, opts...)
				}
				time.Sleep(5 * time.Second)
				synctest.Wait()
				var last time.Duration
				for i := range 10 {
					starts := f.startsOf(fmt.Sprintf("r%d", i))
					if len(starts) != 1 {
						t.Fatalf("r%d ran %d times, want once: %v", i, len(starts), starts)
					}
					// In the order they were added (and so fell due).
					if starts[0] < last {
						t.Errorf("r%d started at %v, before an earlier probe (%v)", i, starts[0], last)
					}
					last = starts[0]
				}
				if f.peak != tc.wantPeak {
					t.Errorf("peak attempts at once: got %d, want %d", f.peak, tc.wantPeak)
				}
				if last != tc.wantLast {
					t.Errorf("last attempt started at %v, want %v", last, tc.wantLast)
				}
				f.check(t)
			})
		})
	}
}

// A group with more hanging probes than slots runs each of them again and again, and its own
// quick probe too: within a group no probe starves.
func TestManagerNoStarvationInGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairExec(0)
		m := NewManager(8)
		defer runManager(m)()
		addSlowPod(m, f, "pod", 6, true) // 12 probes that hang for 10 s, 2 slots for the group
		c := &corev1.Container{Name: "quick", ReadinessProbe: fairProbe("ready", 1, 1)}
		m.Add("pod/quick", c, "", f.t0, f.exec, nil, WithGroup("pod"))
		time.Sleep(60*time.Second - time.Millisecond)
		synctest.Wait()

		// The group gets 2 new attempts a second at least: 13 probes wait 7 s at most.
		const wait = 7 * time.Second
		for j := range 6 {
			for _, k := range []string{"ready", "live"} {
				cmd := fmt.Sprintf("hang-pod-%d-%s", j, k)
				starts := f.startsOf(cmd)
				if len(starts) < 4 {
					t.Errorf("%s ran %d times in 60 s: %v", cmd, len(starts), starts)
				}
				prev := time.Duration(0)
				for _, s := range starts {
					if gap := s - prev; gap > 10*time.Second+wait {
						t.Errorf("%s waited %v between attempts: %v", cmd, gap, starts)
					}
					prev = s
				}
			}
		}
		// The quick probe is due every second; it waits behind its group's earlier due probes.
		starts := f.startsOf("ready")
		if len(starts) < 50 {
			t.Errorf("quick probe ran %d times in 60 s: %v", len(starts), starts)
		}
		prev := time.Duration(0)
		for _, s := range starts {
			if gap := s - prev; gap > time.Second+wait {
				t.Errorf("quick probe waited %v between attempts: %v", gap, starts)
			}
			prev = s
		}
		f.check(t)
	})
}

// A result callback that blocks holds no slot: with a single slot, another container's probe
// still runs every second. The blocked container's own probe waits for its callback.
func TestManagerBlockedCallbackHoldsNoSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairExec(0)
		m := NewManager(1)
		defer runManager(m)()
		release := make(chan struct{})
		blocked := func(Kind, Result, string) { <-release }
		m.Add("a", &corev1.Container{ReadinessProbe: fairProbe("a", 1, 1)}, "", f.t0, f.exec, blocked)
		m.Add("b", &corev1.Container{ReadinessProbe: fairProbe("b", 1, 1)}, "", f.t0, f.exec, nil)
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		b := f.startsOf("b")
		if len(b) != 10 || lateness(b, time.Second) != 0 {
			t.Errorf("b started at %v, want every second from 0 s", b)
		}
		if a := f.startsOf("a"); len(a) != 1 {
			t.Errorf("a started at %v while its callback blocked, want once", a)
		}
		close(release)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		// Due again since 1 s: it runs at once, then every second.
		if a := f.startsOf("a"); !slices.Equal(a, []time.Duration{0, 10*time.Second - time.Millisecond, 11*time.Second - time.Millisecond, 12*time.Second - time.Millisecond}) {
			t.Errorf("a started at %v after its callback returned", a)
		}
		f.check(t)
	})
}

// Removing containers whose probes wait for a slot or run forgets them and their groups.
func TestManagerRemoveQueuedAndGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairExec(500 * time.Millisecond)
		m := NewManager(1)
		defer runManager(m)()
		m.Add("x", &corev1.Container{ReadinessProbe: fairProbe("x", 1, 1)}, "", f.t0, f.exec, nil, WithGroup("pod"))
		m.Add("y", &corev1.Container{ReadinessProbe: fairProbe("y", 1, 1)}, "", f.t0, f.exec, nil, WithGroup("pod"))
		m.Add("z", &corev1.Container{ReadinessProbe: fairProbe("z", 1, 1)}, "", f.t0, f.exec, nil)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		m.Remove("y") // queued behind x
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if y := f.startsOf("y"); len(y) != 0 {
			t.Errorf("removed y ran at %v", y)
		}
		if x, z := f.startsOf("x"), f.startsOf("z"); len(x) < 2 || len(z) < 2 {
			t.Errorf("x ran at %v, z at %v: want both again and again", x, z)
		}
		m.mu.Lock()
		if len(m.groups) != 2 {
			t.Errorf("%d groups, want 2 (pod with x, z on its own)", len(m.groups))
		}
		m.mu.Unlock()
		m.Remove("x")
		m.Remove("z")
		synctest.Wait()
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.groups) != 0 || len(m.runnable) != 0 || m.held != 0 || len(m.due) != 0 {
			t.Errorf("after removing everything: %d groups, %d runnable, %d slots held, %d due", len(m.groups), len(m.runnable), m.held, len(m.due))
		}
		f.check(t)
	})
}
