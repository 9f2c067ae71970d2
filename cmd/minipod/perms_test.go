package main

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Registry credentials that group or others can read are not used, and the daemon says why;
// --insecure-manifest-perms uses them anyway.
func TestRegistryCredentialsPerms(t *testing.T) {
	t.Setenv("HOME", t.TempDir()) // no $HOME/.docker/config.json to fall back on
	path := filepath.Join(t.TempDir(), "auth.json")
	body := `{"auths":{"registry.local":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:pw")) + `"}}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode     os.FileMode
		insecure bool
		used     bool
	}{
		{0o600, false, true},
		{0o644, false, false},
		{0o660, false, false},
		{0o644, true, true},
	} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		creds := registryCredentials(path, tc.insecure, slog.New(slog.NewTextHandler(&logs, nil)))
		u, p, ok := creds("registry.local")
		if used := ok && u == "alice" && p == "pw"; used != tc.used {
			t.Errorf("mode %#o insecure %v: credentials used = %v, want %v", tc.mode, tc.insecure, used, tc.used)
		}
		if tc.used {
			if logs.Len() != 0 {
				t.Errorf("mode %#o insecure %v: logged %s", tc.mode, tc.insecure, logs.String())
			}
			continue
		}
		for _, want := range []string{"registry credentials not used", "registry auth file " + path + " is owned by", "not readable or writable by group or others", "--insecure-manifest-perms"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("mode %#o: log lacks %q:\n%s", tc.mode, want, logs.String())
			}
		}
	}
}
