package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Annotations set on every loaded pod. The first two are the kubelet's own for static pods, so
// tools that know Kubernetes read them as usual.
const (
	AnnotationConfigHash   = "kubernetes.io/config.hash"
	AnnotationConfigSource = "kubernetes.io/config.source"
	AnnotationManifest     = "minipod.io/manifest"
	configSourceFile       = "file"
)

// Load is LoadAll for a file that holds exactly one pod.
func Load(path string, data []byte) (*corev1.Pod, error) {
	pods, err := LoadAll(path, data)
	if err != nil {
		return nil, err
	}
	if len(pods) != 1 {
		return nil, invalidf("the file holds %d pods: expected exactly one", len(pods))
	}
	return pods[0], nil
}

// LoadAll is LoadFile's pods.
func LoadAll(path string, data []byte) ([]*corev1.Pod, error) {
	f, err := LoadFile(path, data)
	if err != nil {
		return nil, err
	}
	return f.Pods, nil
}

// LoadFile is what the daemon calls for one file: decode its objects (DecodeFile), then hash,
// default and validate each pod, and prepare and validate each ConfigMap and Secret as the API
// server would (a Secret's stringData merged into data; the namespace "default" when unset).
// On success every pod has metadata.uid = Hash(path, decoded pod) and the annotations
// kubernetes.io/config.hash (the same hash), kubernetes.io/config.source ("file") and
// minipod.io/manifest (path). A file is used whole or not at all: on failure it returns no
// object and an *Error whose message is the decode problem or every field error of the first
// invalid object joined with "; ", after the document at fault when the file holds several,
// and which names that object. Two objects of one kind with the same namespace/name are an
// error too.
func LoadFile(path string, data []byte) (*File, error) {
	f, err := DecodeFile(data)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]int, len(f.Pods))
	for i, pod := range f.Pods {
		where := f.place(KindPod, i)
		// The hash is taken before defaulting, so that a newer minipod that knows more defaults
		// does not see every manifest as changed and restart every pod.
		hash := Hash(path, pod)
		namespace := pod.Namespace // as written, like PeekName's
		dropServerFields(pod)
		SetDefaults(pod)
		if errs := Validate(pod); len(errs) > 0 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			return nil, &Error{Reason: ReasonInvalid, Kind: KindPod, Message: where + strings.Join(msgs, "; "), Namespace: namespace, Name: pod.Name}
		}
		key := pod.Namespace + "/" + pod.Name
		if j, ok := seen[key]; ok {
			return nil, &Error{Reason: ReasonInvalid, Kind: KindPod, Namespace: namespace, Name: pod.Name,
				Message: fmt.Sprintf("%smetadata.name: Duplicate value: pod %s is also defined by %s of this file", where, key, f.where[KindPod][j].where)}
		}
		seen[key] = i
		pod.UID = types.UID(hash)
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[AnnotationConfigHash] = hash
		pod.Annotations[AnnotationConfigSource] = configSourceFile
		pod.Annotations[AnnotationManifest] = path
	}
	clear(seen)
	for i, cm := range f.ConfigMaps {
		prepareConfigMap(cm)
		if errs := ValidateConfigMap(cm); len(errs) > 0 {
			return nil, f.objectError(KindConfigMap, i, &cm.ObjectMeta, errs)
		}
		if err := f.unique(seen, KindConfigMap, i, &cm.ObjectMeta); err != nil {
			return nil, err
		}
	}
	clear(seen)
	for i, s := range f.Secrets {
		prepareSecret(s)
		if errs := ValidateSecret(s); len(errs) > 0 {
			return nil, f.objectError(KindSecret, i, &s.ObjectMeta, errs)
		}
		if err := f.unique(seen, KindSecret, i, &s.ObjectMeta); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// unique records object i of kind in seen, or returns the error of its second definition.
func (f *File) unique(seen map[string]int, kind string, i int, m *metav1.ObjectMeta) error {
	key := m.Namespace + "/" + m.Name
	if j, ok := seen[key]; ok {
		return &Error{Reason: ReasonInvalid, Kind: kind, Namespace: m.Namespace, Name: m.Name,
			Message: fmt.Sprintf("%smetadata.name: Duplicate value: %s %s is also defined by %s of this file", f.place(kind, i), kind, key, f.where[kind][j].where)}
	}
	seen[key] = i
	return nil
}

// dropServerFields clears what the API server owns and ignores on create: a manifest copied from
// `kubectl get -o yaml` carries a status, a uid and maybe a deletionTimestamp, none of which may
// steer minipod (a deletionTimestamp would make the pod look like it is being deleted).
func dropServerFields(pod *corev1.Pod) {
	pod.Status = corev1.PodStatus{}
	dropMetaServerFields(&pod.ObjectMeta)
}

// Hash is the stable identity of a manifest's content and path: the first 32 hex characters of
// the SHA-256 of the pod's canonical JSON (as decoded, before defaults, without the fields the API
// server owns) followed by a NUL and the path. The canonical form sorts keys and drops nulls and
// empty objects and lists, so it does not depend on key order, whitespace, YAML vs JSON, or on a
// newer k8s.io/api adding fields that are serialized when empty.
func Hash(path string, pod *corev1.Pod) string {
	var c *corev1.Pod
	if pod != nil {
		c = pod.DeepCopy()
		dropServerFields(c)
	}
	h := sha256.New()
	h.Write(canonicalJSON(c))
	h.Write([]byte{0})
	h.Write([]byte(path))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func canonicalJSON(pod *corev1.Pod) []byte {
	raw, err := json.Marshal(pod)
	if err != nil {
		// A decoded pod always marshals; fall back to something still deterministic.
		return []byte(err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers exactly as encoded
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(prune(v)) // encoding/json sorts map keys
	if err != nil {
		return raw
	}
	return out
}

// prune removes null values and empty objects and lists from objects, bottom up. Elements of
// lists are kept, since their position means something.
func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			e = prune(e)
			if isEmptyValue(e) {
				delete(t, k)
			} else {
				t[k] = e
			}
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = prune(e)
		}
		return t
	}
	return v
}

func isEmptyValue(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}
