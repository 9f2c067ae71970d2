// Package events keeps Kubernetes-style events about pods in memory, as a kubelet reports
// them to the API server: a bounded ring shared by all pods, where an event identical to a
// recent one (same object, field path, type, reason and message within CollapseWindow) only
// counts up and moves to the newest place, like the kubelet's event correlator.
package events

import (
	"container/list"
	"context"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Event types.
const (
	Normal  = corev1.EventTypeNormal
	Warning = corev1.EventTypeWarning
)

// Reasons the kubelet uses, for the daemon's own events.
const (
	ReasonPulling                = "Pulling"
	ReasonPulled                 = "Pulled"
	ReasonFailed                 = "Failed" // image pull or container create/start failed
	ReasonBackOff                = "BackOff"
	ReasonErrImageNeverPull      = "ErrImageNeverPull"
	ReasonCreated                = "Created"
	ReasonStarted                = "Started"
	ReasonKilling                = "Killing"
	ReasonExceededGracePeriod    = "ExceededGracePeriod"
	ReasonPreemptContainer       = "PreemptContainer"
	ReasonUnhealthy              = "Unhealthy"
	ReasonProbeWarning           = "ProbeWarning"
	ReasonFailedPostStartHook    = "FailedPostStartHook"
	ReasonFailedPreStopHook      = "FailedPreStopHook"
	ReasonSandboxChanged         = "SandboxChanged"
	ReasonFailedCreatePodSandBox = "FailedCreatePodSandBox"
	ReasonFailedKillPod          = "FailedKillPod"
	ReasonFailedMount            = "FailedMount"
	ReasonFailedSync             = "FailedSync"
	ReasonInvalidManifest        = "InvalidManifest"
)

const (
	// DefaultCapacity is the number of events kept, all pods together.
	DefaultCapacity = 1000
	// CollapseWindow is how recent an identical event must be for a new one to count it up
	// rather than take a place of its own.
	CollapseWindow = 10 * time.Minute
	// MaxMessage is the longest message kept, in bytes; longer ones are cut (at a UTF-8
	// boundary) and end with "...".
	MaxMessage = 1024
	// SubscriberBuffer is how many events a subscriber can lag behind before it loses some.
	SubscriberBuffer = 256
	// Component is the source component of the events.
	Component = "minipod"
)

// KindNode is Event.Kind of an event about the node itself (image garbage collection, say).
const KindNode = "Node"

// Event is one event about a pod, or about one of its containers when FieldPath is set, or,
// with Kind KindNode, about the node.
type Event struct {
	// ID is unique among the events of a Recorder: "<name>.<hex nanoseconds>", as the
	// kubelet names events.
	ID string `json:"id"`
	// Kind is the involved object's kind: "" for a Pod, KindNode for the node (named by
	// Name, with no namespace).
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
	// FieldPath is "spec.containers{NAME}" (or spec.initContainers{NAME}) for an event about a
	// container, "" for the pod.
	FieldPath string    `json:"fieldPath,omitempty"`
	Type      string    `json:"type"` // Normal or Warning
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	First     time.Time `json:"firstTimestamp"`
	Last      time.Time `json:"lastTimestamp"`
	Count     int32     `json:"count"`
	Host      string    `json:"host,omitempty"` // the node's name
}

// ContainerFieldPath is the field path of an app container.
func ContainerFieldPath(name string) string { return "spec.containers{" + name + "}" }

// InitContainerFieldPath is the field path of an init container.
func InitContainerFieldPath(name string) string { return "spec.initContainers{" + name + "}" }

type key struct {
	kind, namespace, name, uid, fieldPath, typ, reason, message string
}

// Recorder keeps the events. It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	capacity int
	ring     *list.List            // of *Event, oldest (least recently seen) first
	index    map[key]*list.Element // the element of each distinct event in the ring
	subs     map[*subscriber]struct{}
	host     string
	now      func() time.Time
	lastNano int64 // for unique IDs
}

type subscriber struct {
	ch      chan Event
	dropped uint64
}

// NewRecorder keeps at most capacity events (DefaultCapacity when capacity <= 0).
func NewRecorder(capacity int) *Recorder {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	host, _ := os.Hostname()
	return &Recorder{
		capacity: capacity,
		ring:     list.New(),
		index:    map[key]*list.Element{},
		subs:     map[*subscriber]struct{}{},
		host:     host,
		now:      time.Now,
	}
}

// SetHost sets the node name written in the events' source (default: the hostname).
func (r *Recorder) SetHost(host string) {
	r.mu.Lock()
	r.host = host
	r.mu.Unlock()
}

// Emit records an event about the pod namespace/name (uid), or one of its containers when
// fieldPath is set. typ is Normal or Warning ("" is Normal). When the same event was recorded
// less than CollapseWindow ago, that one counts up and becomes the newest instead. A nil
// Recorder records nothing.
func (r *Recorder) Emit(namespace, name, uid, fieldPath, typ, reason, message string) {
	r.emit("", namespace, name, uid, fieldPath, typ, reason, message)
}

// EmitNode records an event about the node (Kind KindNode, named by the host name given to
// SetHost), collapsed as Emit does. A nil Recorder records nothing.
func (r *Recorder) EmitNode(typ, reason, message string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	host := r.host
	r.mu.Unlock()
	r.emit(KindNode, "", host, "", "", typ, reason, message)
}

func (r *Recorder) emit(kind, namespace, name, uid, fieldPath, typ, reason, message string) {
	if r == nil {
		return
	}
	if typ == "" {
		typ = Normal
	}
	message = truncate(message, MaxMessage)
	k := key{kind, namespace, name, uid, fieldPath, typ, reason, message}

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var ev *Event
	if el, ok := r.index[k]; ok {
		prev := el.Value.(*Event)
		if now.Sub(prev.Last) <= CollapseWindow {
			// Copy on write: List's callers hold copies, subscribers too.
			c := *prev
			c.Count++
			c.Last = now
			ev = &c
			el.Value = ev
			r.ring.MoveToBack(el)
		} else {
			r.ring.Remove(el)
			delete(r.index, k)
		}
	}
	if ev == nil {
		nano := max(now.UnixNano(), r.lastNano+1)
		r.lastNano = nano
		ev = &Event{
			ID:        fmt.Sprintf("%s.%x", name, nano),
			Kind:      kind,
			Namespace: namespace, Name: name, UID: uid, FieldPath: fieldPath,
			Type: typ, Reason: reason, Message: message,
			First: now, Last: now, Count: 1, Host: r.host,
		}
		r.index[k] = r.ring.PushBack(ev)
		for r.ring.Len() > r.capacity {
			old := r.ring.Remove(r.ring.Front()).(*Event)
			delete(r.index, keyOf(old))
		}
	}
	for s := range r.subs {
		select {
		case s.ch <- *ev:
		default:
			s.dropped++
		}
	}
}

// Eventf is Emit with a formatted message.
func (r *Recorder) Eventf(namespace, name, uid, fieldPath, typ, reason, format string, args ...any) {
	r.Emit(namespace, name, uid, fieldPath, typ, reason, fmt.Sprintf(format, args...))
}

func keyOf(e *Event) key {
	return key{e.Kind, e.Namespace, e.Name, e.UID, e.FieldPath, e.Type, e.Reason, e.Message}
}

// List returns the events of the pod namespace/name, oldest first (by the time they last
// happened). An empty namespace or name matches all: List("", "") is every event.
func (r *Recorder) List(namespace, name string) []Event {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, 0, r.ring.Len())
	for el := r.ring.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Event)
		if (namespace == "" || e.Namespace == namespace) && (name == "" || e.Name == name) {
			out = append(out, *e)
		}
	}
	return out
}

// Len is the number of events kept.
func (r *Recorder) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ring.Len()
}

// Subscribe delivers every event emitted from now on, new ones and counted-up ones (with their
// new Count and Last), until ctx is done; then the channel is closed. Emit never waits for a
// subscriber: one that lags more than SubscriberBuffer events behind loses the events that do
// not fit (List still has them). Callers that need the past call List first.
func (r *Recorder) Subscribe(ctx context.Context) <-chan Event {
	if r == nil {
		ch := make(chan Event)
		context.AfterFunc(ctx, func() { close(ch) })
		return ch
	}
	s := &subscriber{ch: make(chan Event, SubscriberBuffer)}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		delete(r.subs, s)
		close(s.ch)
		r.mu.Unlock()
	})
	return s.ch
}

// Dropped is the number of events that subscribers lost by lagging behind, all together,
// among the subscribers still subscribed.
func (r *Recorder) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for s := range r.subs {
		n += s.dropped
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// ToCoreV1 converts events, in their order, to a v1 EventList as kubectl prints it: involved
// object the Pod (or the Node), source the minipod component on the node.
func ToCoreV1(ev []Event) *corev1.EventList {
	list := &corev1.EventList{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"},
		Items:    make([]corev1.Event, 0, len(ev)),
	}
	for _, e := range ev {
		kind := e.Kind
		if kind == "" {
			kind = "Pod"
		}
		list.Items = append(list.Items, corev1.Event{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
			ObjectMeta: metav1.ObjectMeta{
				Name:              e.ID,
				Namespace:         e.Namespace,
				CreationTimestamp: metav1.NewTime(e.First),
			},
			InvolvedObject: corev1.ObjectReference{
				APIVersion: "v1",
				Kind:       kind,
				Namespace:  e.Namespace,
				Name:       e.Name,
				UID:        types.UID(e.UID),
				FieldPath:  e.FieldPath,
			},
			Reason:              e.Reason,
			Message:             e.Message,
			Source:              corev1.EventSource{Component: Component, Host: e.Host},
			FirstTimestamp:      metav1.NewTime(e.First),
			LastTimestamp:       metav1.NewTime(e.Last),
			Count:               e.Count,
			Type:                e.Type,
			ReportingController: Component,
			ReportingInstance:   e.Host,
		})
	}
	return list
}
