package config_test

import (
	"testing"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/imagebuild"
	"github.com/minipod/minipod/pkg/pod"
)

// The defaults are written out in package config so that it stays light; they must agree with
// the packages that own them.
func TestDefaultsAgreeWithOwners(t *testing.T) {
	d := config.Default()
	if d.Socket != api.DefaultSocket {
		t.Errorf("socket %q, api.DefaultSocket %q", d.Socket, api.DefaultSocket)
	}
	if d.PauseImage != imagebuild.DefaultPauseName {
		t.Errorf("pause-image %q, imagebuild.DefaultPauseName %q", d.PauseImage, imagebuild.DefaultPauseName)
	}
	if d.BackoffInitial.D() != pod.DefaultBackoff.Initial || d.BackoffMax.D() != pod.DefaultBackoff.Max {
		t.Errorf("backoff %s/%s, pod.DefaultBackoff %v", d.BackoffInitial, d.BackoffMax, pod.DefaultBackoff)
	}
}
