// Package apparmor decides what AppArmor means for a pod on this node, as a kubelet with
// containerd's CRI decides it:
//
//   - which profile a container asks for (Profile): its securityContext.appArmorProfile, else
//     the legacy annotation container.apparmor.security.beta.kubernetes.io/<container>, else
//     the pod's securityContext.appArmorProfile (the kubelet's apparmor.GetProfile);
//   - whether the node admits the pod (Host.Admit, the kubelet's AppArmor admit handler): a
//     node without AppArmor refuses a pod that asks for any profile but Unconfined, with the
//     reason "AppArmor" and "Cannot enforce AppArmor: AppArmor is not enabled on the host";
//   - which profile a container's OCI spec gets (Host.Spec, containerd's
//     GenerateApparmorSpecOpts): where the runtime supports AppArmor, RuntimeDefault and no
//     profile at all mean containerd's default profile (none for privileged containers),
//     Localhost a profile the kernel has loaded; elsewhere none, and a container that asks
//     for one fails to be created.
//
// The host's state is a value (Host), read from /sys once by System and injected by tests, so
// that the decisions are pure functions. The package has no side effects: loading the default
// profile is the runtime's (pkg/runtime).
package apparmor

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const (
	// Reason is the status reason of a pod the node refuses for AppArmor: the kubelet's
	// lifecycle.AppArmorNotAdmittedReason.
	Reason = "AppArmor"
	// DefaultProfile is the runtime's default profile: the one containerd's CRI generates,
	// loads when the kernel lacks it, and applies for RuntimeDefault.
	DefaultProfile = "cri-containerd.apparmor.d"

	annotationPrefix = corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix
)

// Profile returns the AppArmor profile the pod sets for container c, or nil when it sets
// none. The container's field wins over the legacy annotation, which wins over the pod's
// field, as on a kubelet (static pods may carry only the annotation). An annotation value
// other than runtime/default, unconfined and localhost/<name> is ignored, as by the kubelet
// (an API server would have refused it).
func Profile(pod *corev1.Pod, c *corev1.Container) *corev1.AppArmorProfile {
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		return c.SecurityContext.AppArmorProfile
	}
	if p := annotationProfile(pod.Annotations, c.Name); p != nil {
		return p
	}
	if pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.AppArmorProfile != nil {
		return pod.Spec.SecurityContext.AppArmorProfile
	}
	return nil
}

func annotationProfile(annotations map[string]string, container string) *corev1.AppArmorProfile {
	v, ok := annotations[annotationPrefix+container]
	if !ok {
		return nil
	}
	switch {
	case v == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault:
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}
	case v == corev1.DeprecatedAppArmorBetaProfileNameUnconfined:
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
	case strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix):
		name := strings.TrimPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix)
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
	}
	return nil
}

// Required reports whether the pod asks for AppArmor: a profile other than Unconfined in the
// pod's field, in any container's field, or in any container annotation. It is the kubelet's
// isRequired, which looks at the fields whether or not a container's own setting overrides
// them; where the kubelet decides by whichever annotation its map iteration meets first, this
// looks at all of them.
func Required(pod *corev1.Pod) bool {
	if sc := pod.Spec.SecurityContext; sc != nil && asks(sc.AppArmorProfile) {
		return true
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if sc := cs[i].SecurityContext; sc != nil && asks(sc.AppArmorProfile) {
				return true
			}
		}
	}
	for k, v := range pod.Annotations {
		if strings.HasPrefix(k, annotationPrefix) && v != corev1.DeprecatedAppArmorBetaProfileNameUnconfined {
			return true
		}
	}
	return false
}

func asks(p *corev1.AppArmorProfile) bool {
	return p != nil && p.Type != corev1.AppArmorProfileTypeUnconfined
}

// Request is what a container asks of AppArmor, as the kubelet hands it to the runtime.
type Request struct {
	// Type is the type of the container's Profile, "" when the pod sets none (the runtime
	// then applies its default where it supports AppArmor).
	Type corev1.AppArmorProfileType
	// Localhost is the name of a Localhost profile.
	Localhost string
}

// RequestFor returns container c's request: its Profile.
func RequestFor(pod *corev1.Pod, c *corev1.Container) Request {
	p := Profile(pod, c)
	if p == nil {
		return Request{}
	}
	r := Request{Type: p.Type}
	if p.LocalhostProfile != nil {
		r.Localhost = *p.LocalhostProfile
	}
	return r
}

// String is the request in the annotations' syntax ("" when none is set).
func (r Request) String() string {
	switch r.Type {
	case corev1.AppArmorProfileTypeRuntimeDefault:
		return corev1.DeprecatedAppArmorBetaProfileRuntimeDefault
	case corev1.AppArmorProfileTypeUnconfined:
		return corev1.DeprecatedAppArmorBetaProfileNameUnconfined
	case corev1.AppArmorProfileTypeLocalhost:
		return corev1.DeprecatedAppArmorBetaProfileNamePrefix + r.Localhost
	}
	return string(r.Type)
}

// Error is the kubelet's refusal of a pod for AppArmor; its message is the kubelet's
// ("Cannot enforce AppArmor: ...") and its status reason is Reason.
type Error struct{ Err error }

func (e *Error) Error() string { return "Cannot enforce AppArmor: " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Admit is the kubelet's AppArmor admission: nil, or an *Error. A pod that asks for no
// profile (or only Unconfined) is admitted everywhere; on a node without AppArmor any other
// is refused; on a node with it, a Localhost profile must have a name. Whether a Localhost
// profile is loaded is not checked here, as by a kubelet since 1.30: the runtime checks it
// when it creates the container (Spec), and a profile loaded later lets the container start.
func (h Host) Admit(pod *corev1.Pod) error {
	if !Required(pod) {
		return nil
	}
	if !h.Enabled {
		return &Error{Err: fmt.Errorf("AppArmor is not enabled on the host")}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			p := Profile(pod, &cs[i])
			if p != nil && p.Type == corev1.AppArmorProfileTypeLocalhost &&
				(p.LocalhostProfile == nil || strings.TrimSpace(*p.LocalhostProfile) == "") {
				return &Error{Err: fmt.Errorf("invalid empty AppArmor profile name for container %q", cs[i].Name)}
			}
		}
	}
	return nil
}
