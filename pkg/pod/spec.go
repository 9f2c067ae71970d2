package pod

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
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

// podFields are the values env fieldRefs can name.
type podFields struct {
	pod      *corev1.Pod
	podIPs   []string
	hostIP   string
	nodeName string
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
	for i, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
			v = Expand(v, defined)
		case e.ValueFrom.FieldRef != nil:
			fv, err := f.value(e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("spec.containers[%s].env[%d].valueFrom.fieldRef: %w", c.Name, i, err)
			}
			v = fv
		default:
			return nil, fmt.Errorf("env %s: this valueFrom source is not supported yet", e.Name)
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

// ExpandAll expands $(VAR) references in each string.
func ExpandAll(in []string, vars map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = Expand(s, vars)
	}
	return out
}

// Expand replaces $(VAR) with the variable's value as Kubernetes does: $$ is an escaped $, and a
// reference to an unknown variable is left as it is.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
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
