package events

import "testing"

// A node event names the node (the host given to SetHost) as a Node, collapses like a pod's,
// and is not a pod's event.
func TestEmitNode(t *testing.T) {
	r := NewRecorder(10)
	r.SetHost("edge1")
	r.EmitNode(Warning, "FreeDiskSpaceFailed", "disk full")
	r.EmitNode(Warning, "FreeDiskSpaceFailed", "disk full")
	r.Emit("default", "edge1", "u1", "", Normal, ReasonStarted, "started")
	evs := r.List("", "edge1")
	if len(evs) != 2 || evs[0].Kind != KindNode || evs[0].Count != 2 || evs[0].Namespace != "" || evs[1].Kind != "" {
		t.Fatalf("events: %+v", evs)
	}
	if got := r.List("default", "edge1"); len(got) != 1 || got[0].Reason != ReasonStarted {
		t.Errorf("the pod edge1's events: %+v, want its own only", got)
	}
	list := ToCoreV1(evs)
	if o := list.Items[0].InvolvedObject; o.Kind != "Node" || o.Name != "edge1" || o.Namespace != "" {
		t.Errorf("node event's object: %+v", o)
	}
	if o := list.Items[1].InvolvedObject; o.Kind != "Pod" {
		t.Errorf("pod event's object: %+v", o)
	}
	var nilRec *Recorder
	nilRec.EmitNode(Warning, "x", "y") // records nothing, does not panic
}
