package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate --config reads a draft configuration whatever its owner and mode: the daemon's
// permission check of its configuration file is not validate's business.
func TestValidateConfigAnyPerms(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("policy:\n  allowPrivileged: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg, 0o666); err != nil {
		t.Fatal(err)
	}
	pod := filepath.Join(dir, "priv.yaml")
	if err := os.WriteFile(pod, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec:\n  containers: [{name: c, image: busybox, securityContext: {privileged: true}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"validate", "--config", cfg, pod}, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "priv.yaml: PolicyViolation") || errb.Len() != 0 {
		t.Errorf("validate --config (mode 0666): code %d out %q err %q; want the policy applied", code, out.String(), errb.String())
	}
}
