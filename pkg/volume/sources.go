package volume

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/minipod/minipod/pkg/envvar"
)

// fileData is one file of an atomic-writer volume.
type fileData struct {
	data []byte
	mode os.FileMode
}

// payload maps a path relative to the volume to its file.
type payload map[string]fileData

// object is a ConfigMap or Secret read from its directory: key -> value.
type object map[string][]byte

// objectPayload projects a ConfigMap or Secret the kubelet's way (configmap.MakePayload,
// secret.MakePayload): every key when items is empty, else each item's key at its path with
// its mode. A missing key is an error unless optional, in which case it is skipped.
func objectPayload(kind, name string, obj object, items []corev1.KeyToPath, defaultMode *int32, optional bool, out payload) error {
	dm := mode(defaultMode, 0644)
	if len(items) == 0 {
		for k, v := range obj {
			out[k] = fileData{data: v, mode: dm}
		}
		return nil
	}
	for _, it := range items {
		v, ok := obj[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("%s %q references non-existent %s key: %s", kind, name, kindKeyWord(kind), it.Key)
		}
		m := dm
		if it.Mode != nil {
			m = mode(it.Mode, 0644)
		}
		out[it.Path] = fileData{data: v, mode: m}
	}
	return nil
}

func kindKeyWord(kind string) string {
	if kind == "secret" {
		return "secret"
	}
	return "config"
}

func mode(m *int32, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m) & os.ModePerm
}

// loadObject reads the ConfigMap or Secret name of a pod in namespace (see Lookup) and builds
// its payload into out. A missing object is an empty one when optional; one that cannot be
// used safely is an error even then. check says whether owners and modes are checked.
func loadObject(objs Objects, namespace, kind, dir, name string, items []corev1.KeyToPath, defaultMode *int32, optional *bool, check bool, out payload) error {
	opt := optional != nil && *optional
	obj, err := Lookup(objs, Local{Dir: dir, Secret: kind == "secret", Insecure: !check}, namespace, name)
	switch {
	case errors.Is(err, ErrNotFound) && opt:
		obj = object{}
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s %q not found", kind, name)
	case err != nil:
		return fmt.Errorf("%s %q: %w", kind, name, err)
	}
	return objectPayload(kind, name, obj, items, defaultMode, opt, out)
}

// Objects are the ConfigMaps and Secrets that manifest files define. Lookup reads them before
// the directories: a name defined in both is the manifest file's.
type Objects interface {
	// Object returns the keys and values of the ConfigMap (secret false) or Secret
	// namespace/name, and whether there is one. The map is not changed by the caller. It may
	// wait until the manifest files were first read.
	Object(secret bool, namespace, name string) (map[string][]byte, bool)
}

// Lookup returns the keys and values of the ConfigMap or Secret name (l.Secret says which) for a
// pod of namespace: the one a manifest file defines (objs, which may be nil), else the one of
// l's directory (Local.Read, whose errors it returns). The map must not be changed.
func Lookup(objs Objects, l Local, namespace, name string) (map[string][]byte, error) {
	if objs != nil && len(validation.IsDNS1123Subdomain(name)) == 0 {
		if data, ok := objs.Object(l.Secret, namespace, name); ok {
			return data, nil
		}
	}
	return l.Read(name)
}

// downwardPayload projects downwardAPI items into out.
func downwardPayload(pod *corev1.Pod, podIP, podDir string, items []corev1.DownwardAPIVolumeFile, defaultMode *int32, out payload) error {
	dm := mode(defaultMode, 0644)
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = fieldValue(pod, podIP, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = envvar.ResourceValue(pod, nil, it.ResourceFieldRef, podDir)
		default:
			err = fmt.Errorf("item %q has neither fieldRef nor resourceFieldRef", it.Path)
		}
		if err != nil {
			return fmt.Errorf("downwardAPI %q: %w", it.Path, err)
		}
		m := dm
		if it.Mode != nil {
			m = mode(it.Mode, 0644)
		}
		out[it.Path] = fileData{data: []byte(v), mode: m}
	}
	return nil
}

// fieldValue is fieldpath.ExtractFieldPathAsString: labels and annotations as sorted
// key="value" lines (Go-quoted values, no final newline), subscripted ones as the value.
func fieldValue(pod *corev1.Pod, podIP, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if strings.HasPrefix(path, p.prefix) && strings.HasSuffix(path, "']") {
			return p.m[strings.TrimSuffix(strings.TrimPrefix(path, p.prefix), "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}
