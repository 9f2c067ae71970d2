package pod

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/minipod/minipod/pkg/envvar"
	"github.com/minipod/minipod/pkg/volume"
)

// Command merges a container's command and args with its image's entrypoint and cmd the
// Kubernetes way: command replaces ENTRYPOINT (and drops CMD), args replace CMD.
func Command(c *corev1.Container, img ocispec.ImageConfig) []string {
	switch {
	case len(c.Command) > 0:
		return append(append([]string{}, c.Command...), c.Args...)
	case len(c.Args) > 0:
		return append(append([]string{}, img.Entrypoint...), c.Args...)
	default:
		return append(append([]string{}, img.Entrypoint...), img.Cmd...)
	}
}

// podFields are the values env fieldRefs can name, and where configMaps and secrets live.
type podFields struct {
	pod          *corev1.Pod
	podIPs       []string
	hostIP       string
	nodeName     string
	configMapDir string // NAME/KEY files
	secretDir    string
	objects      volume.Objects // the manifest files' ConfigMaps and Secrets, before the directories; may be nil
	// insecureSecrets reads configMaps and secrets whatever their owner and mode
	// (--insecure-manifest-perms).
	insecureSecrets bool
	podDir          string // for ephemeral-storage capacity
}

// envValue is the value of the container's env entry i; ok is false for an optional source
// that is missing (the variable is then not set).
func (f podFields) envValue(c *corev1.Container, i int, e corev1.EnvVar, defined map[string]string) (string, bool, error) {
	switch vf := e.ValueFrom; {
	case vf == nil:
		return envvar.Expand(e.Value, defined), true, nil
	case vf.FieldRef != nil:
		fv, err := f.value(vf.FieldRef.FieldPath)
		if err != nil {
			return "", false, fmt.Errorf("env[%d] %s: %w", i, e.Name, err)
		}
		return fv, true, nil
	case vf.ResourceFieldRef != nil:
		rv, err := envvar.ResourceValue(f.pod, c, vf.ResourceFieldRef, f.podDir)
		if err != nil {
			return "", false, fmt.Errorf("env[%d] %s: %w", i, e.Name, err)
		}
		return rv, true, nil
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		return f.localKey("configmap", r.Name, r.Key, r.Optional)
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		return f.localKey("secret", r.Name, r.Key, r.Optional)
	default:
		return "", false, fmt.Errorf("env %s: unsupported valueFrom source", e.Name)
	}
}

// readLocal reads every key of the configMap or secret name (kind says which) the way volumes
// read them (volume.Lookup): the manifest files' first, then the directory's. A missing one is
// an error wrapping volume.ErrNotFound. Owners and modes in the directory are checked unless
// insecureSecrets is set.
func (f podFields) readLocal(kind, name string) (map[string][]byte, error) {
	dir := f.configMapDir
	if kind == "secret" {
		dir = f.secretDir
	}
	return volume.Lookup(f.objects, volume.Local{Dir: dir, Secret: kind == "secret", Insecure: f.insecureSecrets}, f.pod.Namespace, name)
}

// localKey reads one key of a configMap or secret. The whole object is read, so that its size
// and files are checked as for a volume. An object that is there but cannot be used safely is
// an error even when optional.
func (f podFields) localKey(kind, name, key string, optional *bool) (string, bool, error) {
	if msgs := append(validation.IsDNS1123Subdomain(name), validation.IsConfigMapKey(key)...); len(msgs) > 0 {
		return "", false, fmt.Errorf("%s %q key %q: invalid reference: %s", kind, name, key, strings.Join(msgs, "; "))
	}
	obj, err := f.readLocal(kind, name)
	switch {
	case errors.Is(err, volume.ErrNotFound) && f.dir(kind) == "":
		return "", false, fmt.Errorf("%s %q key %q: invalid reference: no %s directory", kind, name, key, kind)
	case errors.Is(err, volume.ErrNotFound) && optional != nil && *optional:
		return "", false, nil
	case errors.Is(err, volume.ErrNotFound):
		return "", false, fmt.Errorf("%s %q not found", kind, name)
	case err != nil:
		return "", false, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	if b, ok := obj[key]; ok {
		return string(b), true, nil
	}
	if optional != nil && *optional {
		return "", false, nil
	}
	return "", false, fmt.Errorf("couldn't find key %s in %s %s", key, kind, name)
}

// dir is the directory of kind's objects.
func (f podFields) dir(kind string) string {
	if kind == "secret" {
		return f.secretDir
	}
	return f.configMapDir
}

// localAll reads every key of a configMap or secret, but for dotfiles.
func (f podFields) localAll(kind, name string, optional *bool) (map[string]string, error) {
	obj, err := f.readLocal(kind, name)
	switch {
	case errors.Is(err, volume.ErrNotFound) && optional != nil && *optional:
		return nil, nil
	case errors.Is(err, volume.ErrNotFound):
		return nil, fmt.Errorf("%s %q not found", kind, name)
	case err != nil:
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	out := map[string]string{}
	for k, v := range obj {
		if !strings.HasPrefix(k, ".") {
			out[k] = string(v)
		}
	}
	return out, nil
}

func (f podFields) value(path string) (string, error) {
	switch path {
	case "metadata.name":
		return f.pod.Name, nil
	case "metadata.namespace":
		return f.pod.Namespace, nil
	case "metadata.uid":
		return string(f.pod.UID), nil
	case "spec.nodeName":
		return f.nodeName, nil
	case "spec.serviceAccountName":
		return f.pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return f.hostIP, nil
	case "status.podIP":
		if len(f.podIPs) > 0 {
			return f.podIPs[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(f.podIPs, ","), nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels['", f.pod.Labels}, {"metadata.annotations['", f.pod.Annotations}} {
		if strings.HasPrefix(path, p.prefix) && strings.HasSuffix(path, "']") {
			return p.m[strings.TrimSuffix(strings.TrimPrefix(path, p.prefix), "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// Env builds a container's environment: the image's variables, overridden by the container's
// env in order, with $(VAR) references expanded as Kubernetes expands them.
func Env(c *corev1.Container, img ocispec.ImageConfig, f podFields) ([]string, error) {
	var names []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			names = append(names, k)
		}
		vals[k] = v
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	// Only variables defined earlier in the container's env list take part in expansion,
	// as on a kubelet; the image's variables do not.
	defined := map[string]string{}
	// envFrom comes first; env entries override it.
	for _, src := range c.EnvFrom {
		var kv map[string]string
		var err error
		switch {
		case src.ConfigMapRef != nil:
			kv, err = f.localAll("configmap", src.ConfigMapRef.Name, src.ConfigMapRef.Optional)
		case src.SecretRef != nil:
			kv, err = f.localAll("secret", src.SecretRef.Name, src.SecretRef.Optional)
		}
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			defined[src.Prefix+k] = kv[k]
			set(src.Prefix+k, kv[k])
		}
	}
	for i, e := range c.Env {
		v, ok, err := f.envValue(c, i, e, defined)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		defined[e.Name] = v
		set(e.Name, v)
	}
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// envMap turns KEY=VALUE pairs into a map for expansion of command and args.
func envMap(env []string, c *corev1.Container) map[string]string {
	m := map[string]string{}
	// Only the container's own env takes part in expansion.
	own := map[string]bool{}
	for _, e := range c.Env {
		own[e.Name] = true
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if own[k] {
			m[k] = v
		}
	}
	return m
}
