package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// File is what one manifest file defines, each kind in file order.
type File struct {
	Pods       []*corev1.Pod
	ConfigMaps []*corev1.ConfigMap
	Secrets    []*corev1.Secret

	where map[string][]object // per kind, the objects in the order of the slices above
	many  bool                // the file holds several objects: messages name the document
}

// Objects reports whether the file defines ConfigMaps or Secrets.
func (f *File) Objects() bool { return len(f.ConfigMaps)+len(f.Secrets) > 0 }

// place is how messages name object i of kind: "document 2 at line 14: " when the file holds
// several objects, else "".
func (f *File) place(kind string, i int) string {
	if !f.many || i >= len(f.where[kind]) {
		return ""
	}
	return f.where[kind][i].where + ": "
}

// MaxObjectSize is the most a ConfigMap's or a Secret's values may hold together: 1 MiB, the API
// server's limit (corev1.MaxSecretSize, which it applies to ConfigMaps too).
const MaxObjectSize = corev1.MaxSecretSize

// prepareConfigMap does to a decoded ConfigMap what the API server does before validation:
// the fields it owns are dropped and the namespace defaults to "default".
func prepareConfigMap(cm *corev1.ConfigMap) {
	dropMetaServerFields(&cm.ObjectMeta)
	if cm.Namespace == "" {
		cm.Namespace = metav1.NamespaceDefault
	}
}

// prepareSecret is prepareConfigMap for a Secret, and also what the API server's conversion and
// defaults do: stringData is merged into data, its values winning over data's of the same key,
// and then dropped (the API server never returns it); the type defaults to Opaque.
func prepareSecret(s *corev1.Secret) {
	dropMetaServerFields(&s.ObjectMeta)
	if s.Namespace == "" {
		s.Namespace = metav1.NamespaceDefault
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
}

// dropMetaServerFields clears the metadata the API server owns (see dropServerFields).
func dropMetaServerFields(m *metav1.ObjectMeta) {
	m.UID = ""
	m.ResourceVersion = ""
	m.Generation = 0
	m.CreationTimestamp = metav1.Time{}
	m.DeletionTimestamp = nil
	m.DeletionGracePeriodSeconds = nil
	m.ManagedFields = nil
	m.SelfLink = ""
}

// ValidateConfigMap checks a prepared ConfigMap as the API server does on create: its metadata,
// every key of data and binaryData (a valid key, in one of the two only), and the size of the
// values together.
func ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateMetadata(&cm.ObjectMeta, field.NewPath("metadata"))
	size := 0
	for _, k := range sortedKeys(cm.Data) {
		errs = append(errs, validateKey(k, field.NewPath("data").Key(k))...)
		if _, ok := cm.BinaryData[k]; ok {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		errs = append(errs, validateKey(k, field.NewPath("binaryData").Key(k))...)
		size += len(cm.BinaryData[k])
	}
	if size > MaxObjectSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", MaxObjectSize))
	}
	return errs
}

// ValidateSecret checks a prepared Secret as the API server does on create: its metadata, its
// keys, the size of its values together and what its type requires. Values are never quoted.
func ValidateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateMetadata(&s.ObjectMeta, field.NewPath("metadata"))
	data := field.NewPath("data")
	size := 0
	for _, k := range sortedKeys(s.Data) {
		errs = append(errs, validateKey(k, data.Key(k))...)
		size += len(s.Data[k])
	}
	if size > MaxObjectSize {
		errs = append(errs, field.TooLong(data, "", MaxObjectSize))
	}
	has := func(k string) bool { _, ok := s.Data[k]; return ok }
	jsonKey := func(k string) {
		if !has(k) {
			errs = append(errs, field.Required(data.Key(k), ""))
			return
		}
		if err := json.Unmarshal(s.Data[k], &map[string]any{}); err != nil {
			errs = append(errs, field.Invalid(data.Key(k), "<secret contents redacted>", err.Error()))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		jsonKey(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		jsonKey(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		// Either may be empty, but one must be there.
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			errs = append(errs, field.Required(data.Key(corev1.BasicAuthUsernameKey), ""), field.Required(data.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(data.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
			if !has(k) {
				errs = append(errs, field.Required(data.Key(k), ""))
			}
		}
	}
	return errs
}

func validateKey(k string, p *field.Path) field.ErrorList {
	return checkValue(validation.IsConfigMapKey, k, p)
}

// immutableConfigMap is the API server's refusal to update old into cm: once immutable, a
// ConfigMap stays immutable and its data and binaryData never change. An absent map and an
// empty one are the same here, as they are in a file.
func immutableConfigMap(old, cm *corev1.ConfigMap) field.ErrorList {
	return immutable(old.Immutable, cm.Immutable, map[string]bool{
		"data":       !maps.Equal(old.Data, cm.Data),
		"binaryData": !maps.EqualFunc(old.BinaryData, cm.BinaryData, bytes.Equal),
	})
}

// immutableSecret is immutableConfigMap for a Secret (stringData is in data by then).
func immutableSecret(old, s *corev1.Secret) field.ErrorList {
	return immutable(old.Immutable, s.Immutable, map[string]bool{"data": !maps.EqualFunc(old.Data, s.Data, bytes.Equal)})
}

// immutable is the errors of an update of an object that was immutable (was) and is now (is),
// whose fields changed as changed says.
func immutable(was, is *bool, changed map[string]bool) field.ErrorList {
	if was == nil || !*was {
		return nil
	}
	const msg = "field is immutable when `immutable` is set"
	var errs field.ErrorList
	if is == nil || !*is {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	for _, f := range sortedKeys(changed) {
		if changed[f] {
			errs = append(errs, field.Forbidden(field.NewPath(f), msg))
		}
	}
	return errs
}

// CheckUpdate refuses a new version of a file that changes an immutable ConfigMap or Secret
// of its previous version (both loaded by LoadFile), as the API server refuses such an update.
// An object that only the new version defines is new, as after a delete: it may hold anything.
// The error names the object and its document.
func CheckUpdate(old, f *File) error {
	if old == nil {
		return nil
	}
	cmMeta := func(cm *corev1.ConfigMap) *metav1.ObjectMeta { return &cm.ObjectMeta }
	if i, errs := refused(old.ConfigMaps, f.ConfigMaps, cmMeta, immutableConfigMap); i >= 0 {
		return f.objectError(KindConfigMap, i, cmMeta(f.ConfigMaps[i]), errs)
	}
	secMeta := func(s *corev1.Secret) *metav1.ObjectMeta { return &s.ObjectMeta }
	if i, errs := refused(old.Secrets, f.Secrets, secMeta, immutableSecret); i >= 0 {
		return f.objectError(KindSecret, i, secMeta(f.Secrets[i]), errs)
	}
	return nil
}

// refused returns the index in cur of the first object whose update from the object of the
// same namespace/name in old check refuses, and why; -1 when there is none.
func refused[T any](old, cur []T, meta func(T) *metav1.ObjectMeta, check func(old, cur T) field.ErrorList) (int, field.ErrorList) {
	prev := make(map[string]T, len(old))
	for _, o := range old {
		m := meta(o)
		prev[m.Namespace+"/"+m.Name] = o
	}
	for i, c := range cur {
		m := meta(c)
		if o, ok := prev[m.Namespace+"/"+m.Name]; ok {
			if errs := check(o, c); len(errs) > 0 {
				return i, errs
			}
		}
	}
	return -1, nil
}

// objectError is the error of object i of kind (a ConfigMap or a Secret): its place in the
// file, then the object, then every field error: `document 2 at line 8: ConfigMap app:
// data[a b]: Invalid value: ...`.
func (f *File) objectError(kind string, i int, m *metav1.ObjectMeta, errs field.ErrorList) *Error {
	msgs := make([]string, len(errs))
	for j, e := range errs {
		msgs[j] = e.Error()
	}
	what := kind
	if m.Name != "" {
		what += " " + m.Name
	}
	return &Error{Reason: ReasonInvalid, Kind: kind, Namespace: m.Namespace, Name: m.Name,
		Message: fmt.Sprintf("%s%s: %s", f.place(kind, i), what, strings.Join(msgs, "; "))}
}

// References returns the names of the ConfigMaps and Secrets a pod uses (volumes, projected
// volumes, env and envFrom of every container), each once, in the order they first appear.
func References(pod *corev1.Pod) (configMaps, secrets []string) {
	seen := map[string]bool{}
	add := func(list *[]string, kind, name string) {
		if name != "" && !seen[kind+"/"+name] {
			seen[kind+"/"+name] = true
			*list = append(*list, name)
		}
	}
	cm := func(name string) { add(&configMaps, KindConfigMap, name) }
	sec := func(name string) { add(&secrets, KindSecret, name) }
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm(v.ConfigMap.Name)
		case v.Secret != nil:
			sec(v.Secret.SecretName)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cm(s.ConfigMap.Name)
				}
				if s.Secret != nil {
					sec(s.Secret.Name)
				}
			}
		}
	}
	var containers []corev1.Container
	containers = append(containers, pod.Spec.InitContainers...)
	containers = append(containers, pod.Spec.Containers...)
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cm(e.ConfigMapRef.Name)
			}
			if e.SecretRef != nil {
				sec(e.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cm(r.Name)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				sec(r.Name)
			}
		}
	}
	return configMaps, secrets
}
