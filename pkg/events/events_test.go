package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time for the recorder.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestRecorder(capacity int) (*Recorder, *clock) {
	r := NewRecorder(capacity)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.now = c.now
	r.SetHost("node1")
	return r, c
}

func TestRingBound(t *testing.T) {
	r, c := newTestRecorder(10)
	for i := range 25 {
		c.add(time.Second)
		r.Emit("default", "web", "u1", "", Normal, ReasonStarted, fmt.Sprintf("event %d", i))
	}
	got := r.List("", "")
	if len(got) != 10 || r.Len() != 10 {
		t.Fatalf("kept %d events, want 10", len(got))
	}
	for i, e := range got {
		if want := fmt.Sprintf("event %d", 15+i); e.Message != want {
			t.Fatalf("event %d is %q, want %q (the oldest go first)", i, e.Message, want)
		}
	}
	if len(r.index) != 10 {
		t.Fatalf("index holds %d entries, want 10", len(r.index))
	}
	if NewRecorder(0).capacity != DefaultCapacity {
		t.Fatal("default capacity")
	}
}

func TestCollapse(t *testing.T) {
	r, c := newTestRecorder(100)
	fp := ContainerFieldPath("app")
	r.Emit("default", "web", "u1", fp, Warning, ReasonBackOff, "Back-off restarting failed container app")
	first := c.now()
	c.add(time.Second)
	r.Emit("default", "web", "u1", fp, Normal, ReasonPulled, "Container image already present")
	c.add(time.Minute)
	r.Emit("default", "web", "u1", fp, Warning, ReasonBackOff, "Back-off restarting failed container app")
	c.add(9 * time.Minute)
	r.Emit("default", "web", "u1", fp, Warning, ReasonBackOff, "Back-off restarting failed container app")
	last := c.now()

	got := r.List("default", "web")
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2: %+v", len(got), got)
	}
	// The counted-up event is the newest now.
	if got[0].Reason != ReasonPulled || got[1].Reason != ReasonBackOff {
		t.Fatalf("order %s, %s", got[0].Reason, got[1].Reason)
	}
	b := got[1]
	if b.Count != 3 || !b.First.Equal(first) || !b.Last.Equal(last) || b.FieldPath != "spec.containers{app}" || b.Type != Warning {
		t.Fatalf("collapsed event %+v", b)
	}

	// Different message, field path, type or object: events of their own.
	r.Emit("default", "web", "u1", fp, Warning, ReasonBackOff, "Back-off restarting failed container other")
	r.Emit("default", "web", "u1", ContainerFieldPath("side"), Warning, ReasonBackOff, "Back-off restarting failed container app")
	r.Emit("default", "web", "u1", fp, Normal, ReasonBackOff, "Back-off restarting failed container app")
	r.Emit("default", "web", "u2", fp, Warning, ReasonBackOff, "Back-off restarting failed container app")
	r.Emit("other", "web", "u1", fp, Warning, ReasonBackOff, "Back-off restarting failed container app")
	if n := len(r.List("", "")); n != 7 {
		t.Fatalf("%d events, want 7", n)
	}

	// More than CollapseWindow after the last one: a new event.
	c.add(CollapseWindow + time.Second)
	r.Emit("default", "web", "u1", fp, Warning, ReasonBackOff, "Back-off restarting failed container app")
	got = r.List("default", "web")
	e := got[len(got)-1]
	if e.Count != 1 || !e.First.Equal(c.now()) {
		t.Fatalf("after the window: %+v", e)
	}
	for _, o := range got[:len(got)-1] {
		if o.ID == e.ID {
			t.Fatal("the expired event is still listed besides the new one")
		}
	}
}

func TestListFilterAndOrder(t *testing.T) {
	r, c := newTestRecorder(100)
	for i, p := range []struct{ ns, name string }{{"default", "a"}, {"default", "b"}, {"kube-system", "a"}, {"default", "a"}} {
		c.add(time.Second)
		r.Emit(p.ns, p.name, "uid-"+p.name, "", "", reasonN(i), fmt.Sprint(i))
	}
	check := func(ns, name string, want ...string) {
		t.Helper()
		var got []string
		for _, e := range r.List(ns, name) {
			got = append(got, e.Message)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("List(%q, %q) = %v, want %v", ns, name, got, want)
		}
	}
	check("", "", "0", "1", "2", "3")
	check("default", "", "0", "1", "3")
	check("default", "a", "0", "3")
	check("", "a", "0", "2", "3")
	check("nope", "", []string{}...)
	ids := map[string]bool{}
	for _, e := range r.List("", "") {
		if e.Type != Normal {
			t.Errorf("empty type recorded as %q", e.Type)
		}
		if ids[e.ID] || !strings.HasPrefix(e.ID, e.Name+".") {
			t.Errorf("bad or duplicate id %q", e.ID)
		}
		ids[e.ID] = true
	}
	// Same instant: ids stay unique.
	r.Emit("default", "a", "u", "", Normal, "X", "same 1")
	r.Emit("default", "a", "u", "", Normal, "X", "same 2")
	l := r.List("default", "a")
	if l[len(l)-1].ID == l[len(l)-2].ID {
		t.Error("two events of one instant share an id")
	}
}

func reasonN(i int) string { return fmt.Sprintf("R%d", i) }

func TestListReturnsCopies(t *testing.T) {
	r, _ := newTestRecorder(10)
	r.Emit("default", "a", "u", "", Normal, "X", "m")
	l := r.List("", "")
	l[0].Message = "changed"
	r.Emit("default", "a", "u", "", Normal, "X", "m")
	l2 := r.List("", "")
	if l2[0].Message != "m" || l2[0].Count != 2 || l[0].Count != 1 {
		t.Fatalf("shared state: %+v / %+v", l, l2)
	}
}

func TestTruncate(t *testing.T) {
	r, _ := newTestRecorder(10)
	r.Emit("d", "a", "u", "", Warning, ReasonUnhealthy, strings.Repeat("é", MaxMessage))
	m := r.List("", "")[0].Message
	if len(m) > MaxMessage || !strings.HasSuffix(m, "...") || !utf8Valid(m) {
		t.Fatalf("message of %d bytes: %q...", len(m), m[:20])
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestSubscribe(t *testing.T) {
	r, _ := newTestRecorder(100)
	ctx, cancel := context.WithCancel(context.Background())
	ch := r.Subscribe(ctx)
	r.Emit("default", "web", "u1", "", Normal, ReasonPulling, "Pulling image \"busybox\"")
	r.Emit("default", "web", "u1", "", Normal, ReasonPulling, "Pulling image \"busybox\"")
	r.Emit("default", "web", "u1", "", Normal, ReasonStarted, "Started container app")
	var got []Event
	for range 3 {
		select {
		case e := <-ch:
			got = append(got, e)
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered")
		}
	}
	if got[0].Count != 1 || got[1].Count != 2 || got[1].ID != got[0].ID || got[2].Reason != ReasonStarted {
		t.Fatalf("delivered %+v", got)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
	r.Emit("default", "web", "u1", "", Normal, ReasonKilling, "after") // no subscriber left: no panic
	if len(r.subs) != 0 {
		t.Fatal("subscriber not removed")
	}
}

func TestStuckSubscriberDoesNotBlock(t *testing.T) {
	r, _ := newTestRecorder(50)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = r.Subscribe(ctx) // never read
	live := r.Subscribe(ctx)
	n := SubscriberBuffer * 3
	done := make(chan struct{})
	var received int
	go func() {
		defer close(done)
		for range live {
			received++
			if received == n {
				return
			}
		}
	}()
	emitted := make(chan struct{})
	go func() {
		for i := range n {
			r.Emit("default", "web", "u", "", Normal, "X", fmt.Sprint(i))
		}
		close(emitted)
	}()
	select {
	case <-emitted:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a stuck subscriber")
	}
	if got := r.Len(); got != 50 {
		t.Fatalf("ring holds %d", got)
	}
	if d := r.Dropped(); d < uint64(n-SubscriberBuffer) {
		t.Fatalf("dropped %d, want at least %d (the stuck subscriber's)", d, n-SubscriberBuffer)
	}
	cancel()
	<-done
}

func TestConcurrent(t *testing.T) {
	r := NewRecorder(100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := r.Subscribe(ctx)
			for i := range 500 {
				r.Emit("default", fmt.Sprintf("pod%d", w%3), "u", ContainerFieldPath("c"), Warning, ReasonBackOff, fmt.Sprint(i%20))
				if i%50 == 0 {
					_ = r.List("default", "")
					_ = ToCoreV1(r.List("", "pod1"))
				}
				select {
				case <-sub:
				default:
				}
			}
		}()
	}
	wg.Wait()
	if r.Len() > 100 {
		t.Fatalf("ring overflow: %d", r.Len())
	}
	var total int32
	for _, e := range r.List("", "") {
		total += e.Count
	}
	if total != 8*500 {
		t.Fatalf("counts add up to %d, want %d", total, 8*500)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Emit("a", "b", "c", "", Normal, "X", "y")
	if r.List("", "") != nil || r.Len() != 0 {
		t.Fatal("nil recorder lists events")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := r.Subscribe(ctx)
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("nil recorder delivered")
	}
}

func TestToCoreV1(t *testing.T) {
	r, c := newTestRecorder(10)
	r.Emit("default", "web", "uid-1", ContainerFieldPath("app"), Warning, ReasonUnhealthy, "Liveness probe failed: HTTP probe failed with statuscode: 500")
	c.add(30 * time.Second)
	r.Emit("default", "web", "uid-1", ContainerFieldPath("app"), Warning, ReasonUnhealthy, "Liveness probe failed: HTTP probe failed with statuscode: 500")
	l := ToCoreV1(r.List("", ""))
	if l.Kind != "EventList" || l.APIVersion != "v1" || len(l.Items) != 1 {
		t.Fatalf("list %+v", l)
	}
	e := l.Items[0]
	if e.Kind != "Event" || e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.Name != "web" || e.InvolvedObject.Namespace != "default" ||
		string(e.InvolvedObject.UID) != "uid-1" || e.InvolvedObject.FieldPath != "spec.containers{app}" ||
		e.Count != 2 || e.Type != "Warning" || e.Reason != "Unhealthy" || e.Source.Component != "minipod" || e.Source.Host != "node1" ||
		e.LastTimestamp.Sub(e.FirstTimestamp.Time) != 30*time.Second || e.Namespace != "default" || !strings.HasPrefix(e.Name, "web.") {
		t.Fatalf("event %+v", e)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"kind":"EventList"`, `"fieldPath":"spec.containers{app}"`, `"count":2`, `"lastTimestamp":"2026-01-02T03:04:35Z"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s: %s", s, b)
		}
	}
	if l := ToCoreV1(nil); l.Items == nil || len(l.Items) != 0 {
		t.Fatal("empty list should have empty items (JSON [])")
	}
}
