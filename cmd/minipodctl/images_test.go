package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/api"
)

func TestPrintImages(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ago := now.Add(-90 * time.Minute)
	var out bytes.Buffer
	printImages(&out, []api.Image{
		{ID: "sha256:0123456789abcdef", Names: []string{"app:1", "app:latest"}, Size: 5 << 20, InUse: true, Pods: []string{"default/web", "prod/api"}},
		{ID: "sha256:fedcba9876543210", Names: []string{"old:1"}, Size: 1536, LastUsed: &ago},
		{ID: "sha256:aaaa", Names: []string{"minipod.local/pause:3.10"}, Size: 800, Pinned: true},
	}, now)
	want := `IMAGE                      IMAGE ID        SIZE      LAST USED   PINNED   PODS
app:1                      0123456789abc   5.0 MiB   in use      no       default/web,prod/api
app:latest                 0123456789abc   5.0 MiB   in use      no       default/web,prod/api
old:1                      fedcba9876543   1.5 KiB   90m ago     no       <none>
minipod.local/pause:3.10   aaaa            800 B     -           yes      <none>
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	for b, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := formatSize(b); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", b, got, want)
		}
	}
}

func TestImagesUnknownSubcommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"--socket", "/nonexistent.sock", "images", "remove"}, nil, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `unknown images command "remove"`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
