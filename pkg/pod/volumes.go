package pod

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/policy"
	"github.com/minipod/minipod/pkg/volume"
)

// How often a volume that failed is tried again, and how often configMap, secret and
// downwardAPI volumes are compared with their sources (the kubelet's sync period is a minute;
// ten seconds is cheap here because only pods with such volumes look).
const (
	volumeRetry   = 5 * time.Second
	volumeRefresh = 10 * time.Second
)

// startVolumes makes the pod's volumes, or refreshes the ones whose content comes from local
// configMaps, secrets and pod fields, off the loop: they read files the loop does not wait on.
func (w *worker) startVolumes(s *podState, refresh bool) {
	cfg := &w.m.cfg
	s.volBusy = true
	pod, podIP, vols := s.pod, firstIP(s.ips), s.vols
	w.spawn(s, func() {
		if refresh {
			changed, err := vols.Refresh(pod, podIP)
			w.post(s, func() { w.volumesRefreshed(s, changed, err) })
			return
		}
		ns, err := w.m.userNS(pod)
		var vols *volume.Prepared
		if err == nil {
			vols, err = volume.Prepare(volume.Config{PodDir: s.n.dir(), ConfigMapDir: cfg.ConfigMapDir, SecretDir: cfg.SecretDir, Objects: cfg.Objects, InsecureSecretPerms: cfg.InsecureSecretPerms, AllowedHostPaths: cfg.AllowedHostPaths,
				CheckDevice: checkDevice(cfg.AllowedDevices), UserNS: ns}, pod, podIP)
		}
		w.post(s, func() { w.volumesMade(s, vols, err) })
	})
}

func (w *worker) volumesMade(s *podState, vols *volume.Prepared, err error) {
	s.volBusy = false
	if err != nil {
		w.log.Warn("volumes not ready", "err", err)
		w.event(s, nil, events.Warning, events.ReasonFailedMount, "%v", err)
		s.volErr = err
		s.volRetryAt = time.Now().Add(volumeRetry)
		return
	}
	s.vols, s.volErr, s.volRetryAt = vols, nil, time.Time{}
	if hasSourcedVolumes(s.pod) {
		s.refreshAt = time.Now().Add(volumeRefresh)
	}
}

func (w *worker) volumesRefreshed(s *podState, changed bool, err error) {
	s.volBusy = false
	if err != nil {
		w.log.Warn("refresh volumes", "err", err)
	} else if changed {
		w.log.Info("volumes updated")
	}
	s.refreshAt = time.Now().Add(volumeRefresh)
}

func hasSourcedVolumes(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil {
			return true
		}
	}
	return false
}

// checkDevice is the policy's allowedDevices as the volume package asks it; nil when unset.
func checkDevice(allowed []string) func(string) error {
	if allowed == nil {
		return nil
	}
	return func(path string) error { return policy.CheckDevice(allowed, path) }
}
