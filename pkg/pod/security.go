package pod

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/apparmor"
	"github.com/minipod/minipod/pkg/manifest"
	"github.com/minipod/minipod/pkg/runtime"
)

// Security resolves a container's effective security settings from the pod's and the
// container's securityContext (the container's fields win), as the kubelet does. The
// AppArmor profile is the container's field, else its legacy annotation, else the pod's
// field (apparmor.Profile); the runtime decides what it means on this host.
// imageUser is the image config's User; seccompDir holds Localhost profiles. The error is a
// CreateContainerConfigError: runAsNonRoot with a root user, or an unusable profile.
func Security(pod *corev1.Pod, c *corev1.Container, imageUser, seccompDir string) (runtime.Security, error) {
	var sec runtime.Security
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	sec.UID = first(csc.RunAsUser, psc.RunAsUser)
	sec.GID = first(csc.RunAsGroup, psc.RunAsGroup)
	sec.SupplementalGroups = append(sec.SupplementalGroups, psc.SupplementalGroups...)
	if psc.FSGroup != nil {
		// Volumes are owned by the fsGroup; the kubelet adds it to every container's groups.
		sec.SupplementalGroups = append(sec.SupplementalGroups, *psc.FSGroup)
	}
	sec.StrictGroups = psc.SupplementalGroupsPolicy != nil && *psc.SupplementalGroupsPolicy == corev1.SupplementalGroupsPolicyStrict
	if csc.Privileged != nil {
		sec.Privileged = *csc.Privileged
	}
	if caps := csc.Capabilities; caps != nil {
		for _, a := range caps.Add {
			sec.CapAdd = append(sec.CapAdd, string(a))
		}
		for _, d := range caps.Drop {
			sec.CapDrop = append(sec.CapDrop, string(d))
		}
	}
	if csc.ReadOnlyRootFilesystem != nil {
		sec.ReadOnlyRootfs = *csc.ReadOnlyRootFilesystem
	}
	if csc.AllowPrivilegeEscalation != nil {
		sec.NoNewPrivileges = !*csc.AllowPrivilegeEscalation
	}
	if len(psc.Sysctls) > 0 {
		sec.Sysctls = map[string]string{}
		for _, s := range psc.Sysctls {
			sec.Sysctls[manifest.NormalizeSysctl(s.Name)] = s.Value // runc takes them dotted
		}
	}
	profile := csc.SeccompProfile
	if profile == nil {
		profile = psc.SeccompProfile
	}
	if profile != nil {
		switch profile.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			sec.Seccomp = "RuntimeDefault"
		case corev1.SeccompProfileTypeLocalhost:
			if profile.LocalhostProfile == nil || *profile.LocalhostProfile == "" {
				return sec, fmt.Errorf("seccompProfile Localhost needs localhostProfile")
			}
			p := filepath.Clean("/" + *profile.LocalhostProfile)
			sec.Seccomp = filepath.Join(seccompDir, p)
		}
	}

	aa := apparmor.RequestFor(pod, c)
	sec.AppArmor = &aa

	nonRoot := first(csc.RunAsNonRoot, psc.RunAsNonRoot)
	if nonRoot != nil && *nonRoot {
		uid := sec.UID
		if uid == nil {
			u, err := imageUID(imageUser)
			if err != nil {
				return sec, err
			}
			uid = &u
		}
		if *uid == 0 {
			return sec, fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
		}
	}
	return sec, nil
}

// imageUID reads the numeric user of an image config's User ("", "uid", "uid:gid"). A user
// name cannot be checked without reading the image's /etc/passwd, which the kubelet refuses to
// guess too.
func imageUID(user string) (int64, error) {
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		return 0, nil
	}
	uid, err := strconv.ParseInt(name, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root", name)
	}
	return uid, nil
}

func first[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}
