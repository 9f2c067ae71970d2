package source

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  k: %q\n", name, value)
}

func secretYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\nstringData:\n  k: %q\n", name, value)
}

// podUsing is a pod that takes env from the ConfigMap cm and mounts the Secret sec.
func podUsing(name, cm, sec string) string {
	return podYAML(name, "x") + fmt.Sprintf("    envFrom: [{configMapRef: {name: %s}}]\n    volumeMounts: [{name: s, mountPath: /s}]\n  volumes: [{name: s, secret: {secretName: %s}}]\n", cm, sec)
}

// writeSecretFile writes a manifest that only its owner may read.
func writeSecretFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// objectsOf summarizes a snapshot's ConfigMaps and Secrets as "Kind namespace/name k=value".
func objectsOf(s Snapshot) []string {
	var out []string
	for _, cm := range s.ConfigMaps {
		out = append(out, fmt.Sprintf("ConfigMap %s/%s k=%s", cm.Namespace, cm.Name, cm.Data["k"]))
	}
	for _, sec := range s.Secrets {
		out = append(out, fmt.Sprintf("Secret %s/%s k=%s", sec.Namespace, sec.Name, sec.Data["k"]))
	}
	return out
}

func checkObjects(t *testing.T, step string, s Snapshot, want []string) {
	t.Helper()
	if got := objectsOf(s); !slices.Equal(got, want) {
		t.Errorf("%s: objects\n got %q\nwant %q", step, got, want)
	}
}

// A file's ConfigMaps and Secrets come with its pods; a changed document changes them; a name
// that another file defines already is a NameConflict told on the pods of the later file, whose
// pods still run; removing the file removes its objects.
func TestLoadObjects(t *testing.T) {
	s, dir := newSource(t)
	writeSecretFile(t, dir, "a.yaml", configMapYAML("app", "1")+"---\n"+secretYAML("db", "pw")+"---\n"+podUsing("web", "app", "db"))
	snap := s.Load()
	checkSnap(t, "first", snap, []string{"default/web<-a.yaml x"}, nil)
	checkObjects(t, "first", snap, []string{"ConfigMap default/app k=1", "Secret default/db k=pw"})

	writeSecretFile(t, dir, "a.yaml", configMapYAML("app", "2")+"---\n"+secretYAML("db", "pw")+"---\n"+podUsing("web", "app", "db"))
	snap = s.Load()
	checkSnap(t, "edited", snap, []string{"default/web<-a.yaml x"}, nil)
	checkObjects(t, "edited", snap, []string{"ConfigMap default/app k=2", "Secret default/db k=pw"})

	writeFile(t, dir, "b.yaml", configMapYAML("app", "other")+"---\n"+podYAML("cache", "redis"))
	writeFile(t, dir, "c.yaml", configMapYAML("app", "third")+"---\n"+configMapYAML("more", "m"))
	snap = s.Load()
	checkSnap(t, "conflict", snap, []string{"default/web<-a.yaml x", "default/cache<-b.yaml redis"},
		[]string{"b.yaml: default/cache NameConflict running=true", "c.yaml: /c.yaml NameConflict running=false"})
	checkObjects(t, "conflict", snap, []string{"ConfigMap default/app k=2", "ConfigMap default/more k=m", "Secret default/db k=pw"})
	if len(snap.Problems) > 0 {
		want := "ConfigMap default/app is already defined by " + filepath.Join(dir, "a.yaml") + "; this file's definition is ignored"
		if m := snap.Problems[0].Message; m != want || !snap.Problems[0].Note || snap.Problems[1].Note {
			t.Errorf("conflict message %q (notes %v %v), want %q", m, snap.Problems[0].Note, snap.Problems[1].Note, want)
		}
	}

	// The owner keeps its object when a file earlier in order defines it too; when it goes,
	// the next file takes it over.
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	snap = s.Load()
	checkSnap(t, "owner removed", snap, []string{"default/cache<-b.yaml redis"}, []string{"c.yaml: /c.yaml NameConflict running=false"})
	checkObjects(t, "owner removed", snap, []string{"ConfigMap default/app k=other", "ConfigMap default/more k=m"})
}

// A file that holds a Secret and that group or others may read is refused, naming the fix; a
// file of ConfigMaps alone may be read by all; --insecure-manifest-perms takes it.
func TestLoadSecretPerms(t *testing.T) {
	if !isRoot {
		t.Skip("the permission checks want root's files")
	}
	s, dir := newSource(t)
	p := writeFile(t, dir, "a.yaml", secretYAML("db", "pw")+"---\n"+podUsing("web", "app", "db"))
	writeFile(t, dir, "cm.yaml", configMapYAML("app", "1"))
	snap := s.Load()
	checkSnap(t, "world-readable", snap, nil, []string{"a.yaml: default/web InsecureManifestPermissions running=false"})
	checkObjects(t, "world-readable", snap, []string{"ConfigMap default/app k=1"})
	want := fmt.Sprintf("manifest file %s holds Secret db and has mode 0644: a file with a Secret must be readable by its owner only (chmod 600 %s; or run minipod with --insecure-manifest-perms)", p, p)
	if len(snap.Problems) == 1 && snap.Problems[0].Message != want {
		t.Errorf("message %q, want %q", snap.Problems[0].Message, want)
	}

	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	snap = s.Load()
	checkSnap(t, "chmod 600", snap, []string{"default/web<-a.yaml x"}, nil)
	checkObjects(t, "chmod 600", snap, []string{"ConfigMap default/app k=1", "Secret default/db k=pw"})

	// Made readable again: refused, and the last good version is kept.
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	snap = s.Load()
	checkSnap(t, "chmod 640", snap, []string{"default/web<-a.yaml x"}, []string{"a.yaml: default/web InsecureManifestPermissions running=true"})
	checkObjects(t, "chmod 640", snap, []string{"ConfigMap default/app k=1", "Secret default/db k=pw"})

	insecure := New(Config{Dir: dir, InsecurePerms: true})
	checkSnap(t, "insecure perms", insecure.Load(), []string{"default/web<-a.yaml x"}, nil)
}

// An immutable ConfigMap whose document changes keeps its content; the file's last good
// version is kept whole and the refusal is told on its pods. A new name is a new object.
func TestLoadImmutable(t *testing.T) {
	s, dir := newSource(t)
	imm := func(name, v string) string {
		return strings.Replace(configMapYAML(name, v), "\ndata:", "\nimmutable: true\ndata:", 1)
	}
	writeFile(t, dir, "a.yaml", imm("app", "1")+"---\n"+podYAML("web", "x"))
	checkObjects(t, "first", s.Load(), []string{"ConfigMap default/app k=1"})

	writeFile(t, dir, "a.yaml", imm("app", "2")+"---\n"+podYAML("web", "x2"))
	snap := s.Load()
	checkSnap(t, "changed", snap, []string{"default/web<-a.yaml x"}, []string{"a.yaml: default/web InvalidManifest running=true"})
	checkObjects(t, "changed", snap, []string{"ConfigMap default/app k=1"})
	want := "document 1 at line 1: ConfigMap app: data: Forbidden: field is immutable when `immutable` is set; the last good version keeps running"
	if len(snap.Problems) == 1 && snap.Problems[0].Message != want {
		t.Errorf("message %q, want %q", snap.Problems[0].Message, want)
	}

	writeFile(t, dir, "a.yaml", imm("app-v2", "2")+"---\n"+podYAML("web", "x2"))
	snap = s.Load()
	checkSnap(t, "renamed", snap, []string{"default/web<-a.yaml x2"}, nil)
	checkObjects(t, "renamed", snap, []string{"ConfigMap default/app-v2 k=2"})
}

// A pod that uses a ConfigMap or Secret that a file and a directory both define is told that
// the file's is used; a pod that does not use it is not.
func TestLoadOverride(t *testing.T) {
	s, dir := newSource(t)
	cmDir, secDir := t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(cmDir, "app"), filepath.Join(secDir, "db"), filepath.Join(cmDir, "lonely")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.cfg.ConfigMapDir, s.cfg.SecretDir = cmDir, secDir
	a := writeSecretFile(t, dir, "a.yaml", configMapYAML("app", "1")+"---\n"+secretYAML("db", "pw")+"---\n"+podUsing("web", "app", "db")+"---\n"+podYAML("other", "x"))
	snap := s.Load()
	checkSnap(t, "override", snap, []string{"default/web<-a.yaml x", "default/other<-a.yaml x"}, []string{"a.yaml: default/web ManifestOverride running=true"})
	want := fmt.Sprintf("ConfigMap app is defined by %s and by %s: the manifest file's is used; Secret db is defined by %s and by %s: the manifest file's is used",
		a, filepath.Join(cmDir, "app"), a, filepath.Join(secDir, "db"))
	if len(snap.Problems) == 1 && (snap.Problems[0].Message != want || !snap.Problems[0].Note) {
		t.Errorf("message (note %v)\n got %q\nwant %q", snap.Problems[0].Note, snap.Problems[0].Message, want)
	}
}

// Object waits for the first Set, then answers from the latest one; a ConfigMap's data and
// binaryData are one set of keys.
func TestObjects(t *testing.T) {
	o := NewObjects()
	got := make(chan bool)
	go func() {
		_, ok := o.Object(false, "default", "app")
		got <- ok
	}()
	select {
	case <-got:
		t.Fatal("Object answered before the first Set")
	case <-time.After(50 * time.Millisecond):
	}
	s, dir := newSource(t)
	writeFile(t, dir, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: v}\nbinaryData: {b: AAE=}\n")
	o.Set(s.Load())
	if !<-got {
		t.Fatal("Object after Set: not found")
	}
	data, ok := o.Object(false, "default", "app")
	if !ok || string(data["k"]) != "v" || string(data["b"]) != "\x00\x01" || len(data) != 2 {
		t.Errorf("configMap data %q %v", data, ok)
	}
	if _, ok := o.Object(true, "default", "app"); ok {
		t.Error("a ConfigMap found as a Secret")
	}
	if _, ok := o.Object(false, "prod", "app"); ok {
		t.Error("a ConfigMap found in another namespace")
	}
	o.Set(Snapshot{})
	if _, ok := o.Object(false, "default", "app"); ok {
		t.Error("a ConfigMap found after it went")
	}
}

// A new file whose ConfigMap is bad is listed under its first pod, or under the file's name
// when it has none (a ConfigMap is no pod); a file of ConfigMaps alone that turns bad keeps its
// objects and says so.
func TestLoadObjectsBad(t *testing.T) {
	s, dir := newSource(t)
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {'a b': x}\n"
	writeFile(t, dir, "a.yaml", bad+"---\n"+podYAML("web", "x"))
	writeFile(t, dir, "b.yaml", bad)
	writeFile(t, dir, "c.yaml", configMapYAML("shared", "1"))
	snap := s.Load()
	checkSnap(t, "new bad", snap, nil, []string{"a.yaml: /web InvalidManifest running=false", "b.yaml: /b.yaml InvalidManifest running=false"})
	checkObjects(t, "new bad", snap, []string{"ConfigMap default/shared k=1"})
	for _, p := range snap.Problems {
		if !strings.Contains(p.Message, `ConfigMap app: data[a b]: Invalid value: "a b"`) {
			t.Errorf("%s: message %q", p.Path, p.Message)
		}
	}

	writeFile(t, dir, "c.yaml", bad)
	snap = s.Load()
	checkObjects(t, "turned bad", snap, []string{"ConfigMap default/shared k=1"})
	if n := len(snap.Problems); n != 3 || !strings.HasSuffix(snap.Problems[2].Message, "; the last good version's ConfigMaps and Secrets are kept") {
		t.Errorf("turned bad: problems %+v", snap.Problems)
	}
}
