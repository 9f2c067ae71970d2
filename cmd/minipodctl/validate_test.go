package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: busybox}]\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: busybox, imagePullPolcy: Always}]\n"), 0o644)
	two := filepath.Join(dir, "two.yaml")
	os.WriteFile(two, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers: [{name: c, image: busybox}]\n"), 0o644)
	twoUnknown := filepath.Join(dir, "two-unknown.yaml")
	os.WriteFile(twoUnknown, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers: [{name: c, image: busybox, imagePullPolcy: Always}]\n"), 0o644)
	deploy := filepath.Join(dir, "deploy.yaml")
	os.WriteFile(deploy, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"), 0o644)
	withConfig := filepath.Join(dir, "with-config.yaml")
	os.WriteFile(withConfig, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {pw: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: busybox}]\n"), 0o600)
	secretUnknown := filepath.Join(dir, "secret-unknown.yaml")
	os.WriteFile(secretUnknown, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringdata: {pw: x}\n"), 0o600)
	badKey := filepath.Join(dir, "bad-key.yaml")
	os.WriteFile(badKey, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {'a b': v}\n"), 0o644)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: []}\n"), 0o644)
	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"validate", good}, 0, "good.yaml: valid"},
		{[]string{"validate", empty}, 1, "spec.containers"},
		{[]string{"validate", unknown}, 0, "valid"},
		{[]string{"validate", "--strict", unknown}, 1, "imagePullPolcy"},
		{[]string{"validate", "--strict", two}, 0, "two.yaml: valid"},
		{[]string{"validate", twoUnknown}, 0, "two-unknown.yaml: valid"},
		{[]string{"validate", "--strict", twoUnknown}, 1, `document 2 at line 7: strict decoding error: unknown field "spec.containers[0].imagePullPolcy"`},
		{[]string{"validate", deploy}, 1, "use the Deployment's pod template (spec.template) as a Pod"},
		{[]string{"validate", "--strict", withConfig}, 0, "with-config.yaml: valid"},
		{[]string{"validate", secretUnknown}, 0, "secret-unknown.yaml: valid"},
		{[]string{"validate", "--strict", secretUnknown}, 1, `strict decoding error: unknown field "stringdata"`},
		{[]string{"validate", badKey}, 1, `ConfigMap app: data[a b]: Invalid value: "a b"`},
		{[]string{"validate", good, filepath.Join(dir, "missing.yaml")}, 1, "no such file"},
		{[]string{"validate"}, 1, "at least one FILE"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, nil, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.contains) {
			t.Errorf("%v: code %d out %q err %q; want code %d containing %q", tc.args, code, out.String(), errb.String(), tc.code, tc.contains)
		}
	}
}

// Every example manifest is a plain Kubernetes v1 Pod an API server would accept.
func TestExampleManifestsStrict(t *testing.T) {
	files, _ := filepath.Glob("../../manifests/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example manifests found")
	}
	var out, errb bytes.Buffer
	if code := run(append([]string{"validate", "--strict"}, files...), nil, &out, &errb); code != 0 {
		t.Fatalf("example manifests fail strict validation:\n%s%s", out.String(), errb.String())
	}
}

func TestCompletion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"completion", "bash"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "complete -F _minipodctl minipodctl") {
		t.Fatalf("completion bash: %d %q %q", code, out.String(), errb.String())
	}
	if code := run([]string{"completion", "fish"}, nil, &out, &errb); code != 1 {
		t.Fatalf("completion fish: exit %d, want 1", code)
	}
}

// validate --config applies the node policy of a daemon configuration file, with the reason
// and field paths the daemon would report; a bad configuration file is an error of its own.
func TestValidatePolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("config.yaml", "policy:\n  allowPrivileged: false\n  allowedHostPaths: [/srv/data]\n")
	badCfg := write("bad.yaml", "policy:\n  allowPrivilegd: false\n")
	good := write("good.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  volumes: [{name: d, hostPath: {path: /srv/data/x}}]\n  containers: [{name: c, image: busybox}]\n")
	priv := write("priv.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec:\n  containers: [{name: c, image: busybox, securityContext: {privileged: true}}]\n")
	outside := write("outside.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: out}\nspec:\n  volumes: [{name: d, hostPath: {path: /srv/database}}]\n  containers: [{name: c, image: busybox}]\n")
	for _, tc := range []struct {
		args     []string
		code     int
		contains []string
	}{
		{[]string{"validate", "--config", cfg, good}, 0, []string{"good.yaml: valid"}},
		{[]string{"validate", "--config=" + cfg, good, priv}, 1, []string{"good.yaml: valid",
			"priv.yaml: PolicyViolation: spec.containers[0].securityContext.privileged: Forbidden: a privileged container is not allowed by this node's policy"}},
		{[]string{"validate", outside, "--config", cfg}, 1, []string{"outside.yaml: PolicyViolation: spec.volumes[0].hostPath.path: Forbidden: host path /srv/database is not under a directory this node's policy allows (/srv/data)"}},
		{[]string{"validate", priv, outside}, 0, []string{"priv.yaml: valid", "outside.yaml: valid"}}, // no policy: all allowed
		{[]string{"validate", "--config", badCfg, good}, 1, []string{"bad.yaml:1: policy: unknown policy key allowPrivilegd"}},
		{[]string{"validate", "--config", filepath.Join(dir, "missing.yaml"), good}, 1, []string{"missing.yaml", "no such file"}},
		{[]string{"validate", good, "--config"}, 1, []string{"--config needs a FILE"}},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, nil, &out, &errb)
		for _, c := range tc.contains {
			if code != tc.code || !strings.Contains(out.String()+errb.String(), c) {
				t.Errorf("%v: code %d out %q err %q; want code %d containing %q", tc.args, code, out.String(), errb.String(), tc.code, c)
			}
		}
	}
}
