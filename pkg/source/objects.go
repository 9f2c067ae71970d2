package source

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/minipod/minipod/pkg/manifest"
)

// Objects holds the ConfigMaps and Secrets of the latest snapshot, for pods to read before the
// ConfigMap and Secret directories. It keeps them in memory only: a Secret never reaches the
// disk this way, and a restarted daemon reads the files again. Object waits for the first Set,
// so that no pod sees a manifest's object missing because the files were not read yet. Safe
// for concurrent use.
type Objects struct {
	ready chan struct{}
	once  sync.Once

	mu         sync.RWMutex
	configMaps map[string]map[string][]byte // namespace/name -> key -> value
	secrets    map[string]map[string][]byte
}

// NewObjects returns an empty Objects that is not ready yet.
func NewObjects() *Objects {
	return &Objects{ready: make(chan struct{})}
}

// Set replaces the objects with those of snap, and makes Objects ready.
func (o *Objects) Set(snap Snapshot) {
	cms := make(map[string]map[string][]byte, len(snap.ConfigMaps))
	for _, cm := range snap.ConfigMaps {
		data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			data[k] = v
		}
		cms[cm.Namespace+"/"+cm.Name] = data
	}
	secs := make(map[string]map[string][]byte, len(snap.Secrets))
	for _, s := range snap.Secrets {
		secs[s.Namespace+"/"+s.Name] = s.Data
	}
	o.mu.Lock()
	o.configMaps, o.secrets = cms, secs
	o.mu.Unlock()
	o.once.Do(func() { close(o.ready) })
}

// Object returns the keys and values of the ConfigMap (secret false) or Secret namespace/name
// that a manifest file defines, and whether one does. The map must not be changed. It blocks
// until the first Set.
func (o *Objects) Object(secret bool, namespace, name string) (map[string][]byte, bool) {
	<-o.ready
	o.mu.RLock()
	defer o.mu.RUnlock()
	m := o.configMaps
	if secret {
		m = o.secrets
	}
	data, ok := m[namespace+"/"+name]
	return data, ok
}

// overrides tells each pod that uses a ConfigMap or Secret that both a file and the
// ConfigMap or Secret directory define that the file's is used: a problem with Running set,
// which the pod's status and events show.
func (s *Source) overrides(snap Snapshot) []Problem {
	if (s.cfg.ConfigMapDir == "" || len(snap.ConfigMaps) == 0) && (s.cfg.SecretDir == "" || len(snap.Secrets) == 0) {
		return nil
	}
	type def struct{ path, dir string }
	defs := map[string]def{} // kind/namespace/name of an object defined twice
	twice := func(kind, dir, namespace, name string) {
		if d := inDir(dir, name); d != "" {
			k := objectKey(kind, namespace, name)
			defs[k] = def{s.owners[k], d}
		}
	}
	for _, cm := range snap.ConfigMaps {
		twice(manifest.KindConfigMap, s.cfg.ConfigMapDir, cm.Namespace, cm.Name)
	}
	for _, sec := range snap.Secrets {
		twice(manifest.KindSecret, s.cfg.SecretDir, sec.Namespace, sec.Name)
	}
	if len(defs) == 0 {
		return nil
	}
	var out []Problem
	for _, pod := range snap.Pods {
		cms, secs := manifest.References(pod)
		var notes []string
		for _, ref := range []struct {
			kind  string
			names []string
		}{{manifest.KindConfigMap, cms}, {manifest.KindSecret, secs}} {
			for _, n := range ref.names {
				if d, ok := defs[objectKey(ref.kind, pod.Namespace, n)]; ok {
					notes = append(notes, fmt.Sprintf("%s %s is defined by %s and by %s: the manifest file's is used", ref.kind, n, d.path, d.dir))
				}
			}
		}
		if len(notes) > 0 {
			out = append(out, Problem{Path: pod.Annotations[manifest.AnnotationManifest], Namespace: pod.Namespace, Name: pod.Name,
				Reason: ReasonOverride, Message: strings.Join(notes, "; "), Running: true, Note: true})
		}
	}
	return out
}

// inDir returns dir/name when the directory dir holds an object name (a directory of that
// name), else "".
func inDir(dir, name string) string {
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, name)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return p
	}
	return ""
}
