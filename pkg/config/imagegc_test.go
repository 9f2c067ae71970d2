package config

import (
	"strings"
	"testing"
	"time"
)

// Image garbage collection takes the kubelet's names, defaults and rules; the node-wide log
// cap is a quantity, 0 for none.
func TestImageGCSettings(t *testing.T) {
	d := Default()
	if d.ImageGCHighThresholdPercent != 85 || d.ImageGCLowThresholdPercent != 80 || d.ImageMinimumGCAge.D() != 2*time.Minute {
		t.Fatalf("defaults: %d, %d, %s; want the kubelet's 85, 80, 2m", d.ImageGCHighThresholdPercent, d.ImageGCLowThresholdPercent, d.ImageMinimumGCAge)
	}
	if d.ContainerLogMaxTotalSize.Bytes() != 1<<30 || d.ContainerdRoot != "" {
		t.Fatalf("defaults: log cap %s, containerd root %q", d.ContainerLogMaxTotalSize, d.ContainerdRoot)
	}
	p := writeFile(t, "image-gc-high-threshold-percent: 90\nimage-gc-low-threshold-percent: 50\nimage-minimum-gc-age: 10m\n"+
		"container-log-max-total-size: 200Mi\ncontainerd-root: /srv/containerd\n")
	cfg, err := load(t, "--config", p, "--image-gc-low-threshold-percent", "60")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ImageGCHighThresholdPercent != 90 || cfg.ImageGCLowThresholdPercent != 60 || cfg.ImageMinimumGCAge.D() != 10*time.Minute ||
		cfg.ContainerLogMaxTotalSize.Bytes() != 200<<20 || cfg.ContainerdRoot != "/srv/containerd" {
		t.Errorf("from the file and a flag: %+v", cfg)
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"--image-gc-high-threshold-percent", "101"}, "image-gc-high-threshold-percent"},
		{[]string{"--image-gc-low-threshold-percent", "-1"}, "image-gc-low-threshold-percent"},
		{[]string{"--image-gc-low-threshold-percent", "85"}, "image-gc-low-threshold-percent: 85 must be less than"},
		{[]string{"--image-minimum-gc-age", "-1s"}, "image-minimum-gc-age"},
		{[]string{"--container-log-max-total-size", "-1"}, "container-log-max-total-size"},
	} {
		_, err := load(t, append([]string{"--config", ""}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: err = %v, want one with %q", tc.args, err, tc.key)
		}
	}
	// 100 disables collection, as on a kubelet: valid with any lower low threshold.
	if _, err := load(t, "--config", "", "--image-gc-high-threshold-percent", "100"); err != nil {
		t.Errorf("high threshold 100: %v", err)
	}
}
