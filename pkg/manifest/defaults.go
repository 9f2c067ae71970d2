package manifest

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SetDefaults applies the API server's defaults for a v1 Pod (pkg/apis/core/v1/defaults.go), the
// ones that matter for running it, plus the namespace "default" that the kubelet's file source
// sets. Each default is a small function in one of the tables below so that adding one is a
// one-line change and each can be tested alone. Defaults only fill what is unset; applying them
// twice changes nothing.
func SetDefaults(pod *corev1.Pod) {
	if pod == nil {
		return
	}
	for _, f := range podDefaults {
		f(pod)
	}
	forEachContainer(pod, func(c *corev1.Container) {
		for _, f := range containerDefaults {
			f(c)
		}
	})
	for i := range pod.Spec.Volumes {
		for _, f := range volumeDefaults {
			f(&pod.Spec.Volumes[i])
		}
	}
	// After the containers' own requests are defaulted: the pod's depend on them.
	defaultPodResources(&pod.Spec)
}

// forEachContainer visits init then app containers. Ephemeral containers are not visited: they
// cannot be part of a manifest (Validate rejects them), as on pod creation.
func forEachContainer(pod *corev1.Pod, f func(*corev1.Container)) {
	for i := range pod.Spec.InitContainers {
		f(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		f(&pod.Spec.Containers[i])
	}
}

var podDefaults = []func(*corev1.Pod){
	defaultNamespace,
	defaultRestartPolicy,
	defaultDNSPolicy,
	defaultTerminationGracePeriod,
	defaultSchedulerName,
	defaultPodSecurityContext,
	defaultEnableServiceLinks,
	defaultHostNetworkPorts,
}

var containerDefaults = []func(*corev1.Container){
	defaultImagePullPolicy,
	defaultTerminationMessage,
	defaultPortProtocols,
	defaultEnvFieldRefs,
	defaultProbes,
	defaultLifecycleHTTPGet,
	defaultRequestsFromLimits,
	defaultRoundResources,
}

var volumeDefaults = []func(*corev1.Volume){
	defaultVolumeSource,
	defaultHostPathType,
	defaultConfigMapMode,
	defaultSecretMode,
	defaultDownwardAPI,
	defaultProjected,
}

// The kubelet puts file pods without a namespace in "default" (pkg/kubelet/config/common.go).
func defaultNamespace(p *corev1.Pod) {
	if p.Namespace == "" {
		p.Namespace = metav1.NamespaceDefault
	}
}

func defaultRestartPolicy(p *corev1.Pod) {
	if p.Spec.RestartPolicy == "" {
		p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	}
}

func defaultDNSPolicy(p *corev1.Pod) {
	if p.Spec.DNSPolicy == "" {
		p.Spec.DNSPolicy = corev1.DNSClusterFirst
	}
}

func defaultTerminationGracePeriod(p *corev1.Pod) {
	if p.Spec.TerminationGracePeriodSeconds == nil {
		s := int64(corev1.DefaultTerminationGracePeriodSeconds)
		p.Spec.TerminationGracePeriodSeconds = &s
	}
}

func defaultSchedulerName(p *corev1.Pod) {
	if p.Spec.SchedulerName == "" {
		p.Spec.SchedulerName = corev1.DefaultSchedulerName
	}
}

func defaultPodSecurityContext(p *corev1.Pod) {
	if p.Spec.SecurityContext == nil {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
}

func defaultEnableServiceLinks(p *corev1.Pod) {
	if p.Spec.EnableServiceLinks == nil {
		v := corev1.DefaultEnableServiceLinks
		p.Spec.EnableServiceLinks = &v
	}
}

// With host networking a container port is a host port, so an unset hostPort means the same
// number; validation then rejects a hostPort that differs.
func defaultHostNetworkPorts(p *corev1.Pod) {
	if !p.Spec.HostNetwork {
		return
	}
	forEachContainer(p, func(c *corev1.Container) {
		for i := range c.Ports {
			if c.Ports[i].HostPort == 0 {
				c.Ports[i].HostPort = c.Ports[i].ContainerPort
			}
		}
	})
}

// defaultImagePullPolicy pulls a moving tag every time: ":latest", or no tag and no digest (which
// means latest). Anything pinned is pulled only when missing.
func defaultImagePullPolicy(c *corev1.Container) {
	if c.ImagePullPolicy != "" {
		return
	}
	if imageTag(c.Image) == "latest" {
		c.ImagePullPolicy = corev1.PullAlways
	} else {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
}

// imageTag returns an image reference's tag as the kubelet's parser does: "latest" when there is
// neither tag nor digest, "" when there is only a digest. A ':' before the last '/' is a
// registry port, not a tag.
func imageTag(image string) string {
	ref, digest := image, false
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref, digest = ref[:i], true
	}
	last := ref[strings.LastIndexByte(ref, '/')+1:]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		return last[i+1:]
	}
	if digest {
		return ""
	}
	return "latest"
}

func defaultTerminationMessage(c *corev1.Container) {
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
}

func defaultPortProtocols(c *corev1.Container) {
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
}

func defaultEnvFieldRefs(c *corev1.Container) {
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil {
			defaultFieldRef(vf.FieldRef)
		}
	}
}

func defaultFieldRef(f *corev1.ObjectFieldSelector) {
	if f != nil && f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

func defaultProbes(c *corev1.Container) {
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p == nil {
			continue
		}
		if p.TimeoutSeconds == 0 {
			p.TimeoutSeconds = 1
		}
		if p.PeriodSeconds == 0 {
			p.PeriodSeconds = 10
		}
		if p.SuccessThreshold == 0 {
			p.SuccessThreshold = 1
		}
		if p.FailureThreshold == 0 {
			p.FailureThreshold = 3
		}
		defaultHTTPGet(p.HTTPGet)
	}
}

func defaultLifecycleHTTPGet(c *corev1.Container) {
	if c.Lifecycle == nil {
		return
	}
	for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
		if h != nil {
			defaultHTTPGet(h.HTTPGet)
		}
	}
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

// defaultRequestsFromLimits makes a container that sets only a limit request that much, so that
// it is not scheduled (or, here, sized) as if it asked for nothing.
func defaultRequestsFromLimits(c *corev1.Container) {
	if c.Resources.Limits == nil {
		return
	}
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	for name, q := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; !ok {
			c.Resources.Requests[name] = q.DeepCopy()
		}
	}
}

// defaultRoundResources rounds quantities up to milli-units as the API server does, so that
// "0.0001" CPU becomes 1m rather than a value the runtime cannot express.
func defaultRoundResources(c *corev1.Container) {
	for _, rl := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		for name, q := range rl {
			q = q.DeepCopy()
			q.RoundUp(resource.Milli)
			rl[name] = q
		}
	}
}

// defaultVolumeSource makes a volume with no source an emptyDir, which is what a bare
// `- name: scratch` means on the API server.
func defaultVolumeSource(v *corev1.Volume) {
	if countSources(&v.VolumeSource) == 0 {
		v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	}
}

func defaultHostPathType(v *corev1.Volume) {
	if v.HostPath != nil && v.HostPath.Type == nil {
		t := corev1.HostPathUnset
		v.HostPath.Type = &t
	}
}

func defaultMode(m **int32, mode int32) {
	if *m == nil {
		*m = &mode
	}
}

func defaultConfigMapMode(v *corev1.Volume) {
	if v.ConfigMap != nil {
		defaultMode(&v.ConfigMap.DefaultMode, corev1.ConfigMapVolumeSourceDefaultMode)
	}
}

func defaultSecretMode(v *corev1.Volume) {
	if v.Secret != nil {
		defaultMode(&v.Secret.DefaultMode, corev1.SecretVolumeSourceDefaultMode)
	}
}

func defaultDownwardAPI(v *corev1.Volume) {
	if v.DownwardAPI == nil {
		return
	}
	defaultMode(&v.DownwardAPI.DefaultMode, corev1.DownwardAPIVolumeSourceDefaultMode)
	for i := range v.DownwardAPI.Items {
		defaultFieldRef(v.DownwardAPI.Items[i].FieldRef)
	}
}

func defaultProjected(v *corev1.Volume) {
	if v.Projected == nil {
		return
	}
	defaultMode(&v.Projected.DefaultMode, corev1.ProjectedVolumeSourceDefaultMode)
	for i := range v.Projected.Sources {
		s := &v.Projected.Sources[i]
		if s.DownwardAPI != nil {
			for j := range s.DownwardAPI.Items {
				defaultFieldRef(s.DownwardAPI.Items[j].FieldRef)
			}
		}
		if s.ServiceAccountToken != nil && s.ServiceAccountToken.ExpirationSeconds == nil {
			hour := int64(3600)
			s.ServiceAccountToken.ExpirationSeconds = &hour
		}
	}
}
