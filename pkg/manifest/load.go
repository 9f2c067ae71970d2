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

// LoadAll is what the daemon calls for one file: decode its pods (DecodeAll), and hash, default
// and validate each. On success every pod has metadata.uid = Hash(path, decoded pod) and the
// annotations kubernetes.io/config.hash (the same hash), kubernetes.io/config.source ("file")
// and minipod.io/manifest (path). A file is used whole or not at all: on failure it returns no
// pod and an *Error whose message is the decode problem or every field error of the first
// invalid pod joined with "; ", after the document at fault when the file holds several, and
// which names that pod. Two pods of one file with the same namespace/name are an error too.
func LoadAll(path string, data []byte) ([]*corev1.Pod, error) {
	pods, err := DecodeAll(data)
	if err != nil {
		return nil, err
	}
	objs, _ := objects(data, false) // cannot fail: DecodeAll did the same
	seen := make(map[string]int, len(pods))
	for i, pod := range pods {
		where := ""
		if len(objs) > 1 {
			where = objs[i].where + ": "
		}
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
			return nil, &Error{Reason: ReasonInvalid, Message: where + strings.Join(msgs, "; "), Namespace: namespace, Name: pod.Name}
		}
		key := pod.Namespace + "/" + pod.Name
		if j, ok := seen[key]; ok {
			return nil, &Error{Reason: ReasonInvalid, Namespace: namespace, Name: pod.Name,
				Message: fmt.Sprintf("%smetadata.name: Duplicate value: pod %s is also defined by %s of this file", where, key, objs[j].where)}
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
	return pods, nil
}

// dropServerFields clears what the API server owns and ignores on create: a manifest copied from
// `kubectl get -o yaml` carries a status, a uid and maybe a deletionTimestamp, none of which may
// steer minipod (a deletionTimestamp would make the pod look like it is being deleted).
func dropServerFields(pod *corev1.Pod) {
	pod.Status = corev1.PodStatus{}
	pod.UID = ""
	pod.ResourceVersion = ""
	pod.Generation = 0
	pod.CreationTimestamp = metav1.Time{}
	pod.DeletionTimestamp = nil
	pod.DeletionGracePeriodSeconds = nil
	pod.ManagedFields = nil
	pod.SelfLink = ""
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
