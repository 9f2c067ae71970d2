package pod

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A names value spells every persisted name the way earlier builds did: adoption after an
// upgrade depends on it.
func TestNames(t *testing.T) {
	n := Dirs{State: "/var/lib/minipod", Log: "/var/log/minipod/pods", NetNS: "/run/netns", CgroupRoot: "/minipod"}.
		pod("default", "web", "0123456789abcdef0123-4567")
	for _, c := range []struct{ got, want string }{
		{n.key(), "default/web"},
		{n.dir(), "/var/lib/minipod/pods/0123456789abcdef0123-4567"},
		{n.sandboxID(), "0123456789abcdef-sandbox"},
		{n.netns(), "/run/netns/minipod-0123456789abcdef"},
		{n.logDir(), "/var/log/minipod/pods/default_web_0123456789abcdef0123-4567"},
		{n.logPath("app", 3), "/var/log/minipod/pods/default_web_0123456789abcdef0123-4567/app/3.log"},
		{n.termLogPath("app", 3), "/var/lib/minipod/pods/0123456789abcdef0123-4567/containers/app/3.termination-log"},
		{n.containerID("app", 3), "0123456789abcdef-app-3"},
		{n.containerID("a123456789b123456789c123456789d123456789e12345", 0), "0123456789abcdef-a123456789b123456789c123456789d123456789-0"},
		{n.fifoDir("x"), "/var/lib/minipod/pods/0123456789abcdef0123-4567/fifo/x"},
		{n.cgroupParent(), "/minipod/pod0123456789abcdef0123-4567"},
		{n.snapshotPrefix(), "0123456789abcdef-"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestPruneAttempts(t *testing.T) {
	dir := t.TempDir()
	n := Dirs{State: dir + "/state", Log: dir + "/logs"}.pod("default", "web", "uid")
	files := []string{
		n.logPath("app", 0), n.logPath("app", 1), n.logPath("app", 1) + ".20261206-120000.000000000",
		n.logPath("app", 2), n.logPath("app", 3), n.logPath("app", 12),
		n.termLogPath("app", 1), n.termLogPath("app", 2), n.termLogPath("app", 3),
		n.logPath("other", 0),
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.pruneAttempts("app", 2) // attempt 3 starts: 2 is the previous one
	var left []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			rel, _ := filepath.Rel(dir, f)
			left = append(left, rel)
		}
	}
	want := []string{
		"logs/default_web_uid/app/2.log", "logs/default_web_uid/app/3.log", "logs/default_web_uid/app/12.log",
		"state/pods/uid/containers/app/2.termination-log", "state/pods/uid/containers/app/3.termination-log",
		"logs/default_web_uid/other/0.log",
	}
	if !slices.Equal(left, want) {
		t.Errorf("left %v\nwant %v", left, want)
	}
}
