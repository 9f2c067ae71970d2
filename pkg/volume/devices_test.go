package volume

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// A hostPath volume whose source is a device node gives its container a device cgroup rule for
// exactly that device, read-only when the mount is; a node reached through subPath or lying in
// an emptyDir (a container with CAP_MKNOD could plant one) gives none; allowedDevices is
// checked on the node really mounted, links followed (issue 22).
func TestMountsAndDevices(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	devDir := t.TempDir()
	node := filepath.Join(devDir, "kmsg0")
	if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11))); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(devDir, "by-id")
	if err := unix.Symlink(node, link); err != nil {
		t.Fatal(err)
	}
	pod := podWith(
		hostPathVol("dev", node, corev1.HostPathCharDev),
		hostPathVol("linked", link, corev1.HostPathUnset),
		hostPathVol("dir", devDir, corev1.HostPathDirectory),
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "dev", MountPath: "/dev/mine"},
		{Name: "linked", MountPath: "/dev/mine-ro", ReadOnly: true},
		{Name: "dir", MountPath: "/devdir", SubPath: "kmsg0"},
		{Name: "scratch", MountPath: "/scratch"},
	}}
	pod.Spec.Containers[0] = *c

	e.cfg.CheckDevice = func(p string) error {
		if p != node {
			return errors.New("not " + node)
		}
		return nil
	}
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	// A node planted in the emptyDir is no device of the container's.
	if err := unix.Mknod(filepath.Join(p.Paths["scratch"], "sda"), unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0))); err != nil {
		t.Fatal(err)
	}
	_, devs, err := p.MountsAndDevices(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{{Type: "c", Major: 1, Minor: 11, Access: "rwm"}, {Type: "c", Major: 1, Minor: 11, Access: "r"}}
	if len(devs) != len(want) || devs[0] != want[0] || devs[1] != want[1] {
		t.Errorf("devices %+v, want %+v", devs, want)
	}

	// The policy refuses the node by what is mounted: the link's target.
	e.cfg.CheckDevice = func(p string) error {
		if !strings.HasSuffix(p, "/by-id") {
			return errors.New("device " + p + " refused")
		}
		return nil
	}
	p2, err := Prepare(e.cfg, podWith(hostPathVol("linked", link, corev1.HostPathUnset)), "")
	if err != nil {
		t.Fatal(err)
	}
	c2 := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "linked", MountPath: "/dev/x"}}}
	_, _, err = p2.MountsAndDevices(c2, nil)
	if reasonOf(err) != ReasonPolicyViolation || !strings.Contains(err.Error(), "spec.volumes[0].hostPath.path: Forbidden: device "+node+" refused") {
		t.Errorf("device refused by the policy: %v", err)
	}
}
