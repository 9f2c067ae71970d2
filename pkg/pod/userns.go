package pod

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/userns"
)

// hostUsersFalse reports whether the pod asks for a user namespace of its own.
func hostUsersFalse(p *corev1.Pod) bool {
	return p.Spec.HostUsers != nil && !*p.Spec.HostUsers
}

// userNS is the pod's user namespace range, or nil for a pod in the host's user namespace. The
// first call for a pod picks the range and records it in the pod's directory; later calls,
// also by a restarted daemon, return the same one until the pod's files are removed.
func (m *Manager) userNS(p *corev1.Pod) (*userns.Range, error) {
	if !hostUsersFalse(p) {
		return nil, nil
	}
	r, err := m.userns.Get(string(p.UID))
	if err != nil {
		return nil, err
	}
	return &r, nil
}
