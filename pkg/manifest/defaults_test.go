package manifest

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// minimalPod is the smallest pod that Validate accepts once defaulted.
func minimalPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: objectMeta("web"),
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "server", Image: "busybox:1.36"}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestSetDefaults(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*corev1.Pod)
		got   func(*corev1.Pod) any
		want  any
	}{
		{"namespace", nil, func(p *corev1.Pod) any { return p.Namespace }, "default"},
		{"namespace kept", func(p *corev1.Pod) { p.Namespace = "ops" }, func(p *corev1.Pod) any { return p.Namespace }, "ops"},
		{"restartPolicy", nil, func(p *corev1.Pod) any { return p.Spec.RestartPolicy }, corev1.RestartPolicyAlways},
		{"restartPolicy kept", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever },
			func(p *corev1.Pod) any { return p.Spec.RestartPolicy }, corev1.RestartPolicyNever},
		{"dnsPolicy", nil, func(p *corev1.Pod) any { return p.Spec.DNSPolicy }, corev1.DNSClusterFirst},
		{"terminationGracePeriodSeconds", nil, func(p *corev1.Pod) any { return *p.Spec.TerminationGracePeriodSeconds }, int64(30)},
		{"terminationGracePeriodSeconds zero kept", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(0)) },
			func(p *corev1.Pod) any { return *p.Spec.TerminationGracePeriodSeconds }, int64(0)},
		{"schedulerName", nil, func(p *corev1.Pod) any { return p.Spec.SchedulerName }, "default-scheduler"},
		{"securityContext", nil, func(p *corev1.Pod) any { return p.Spec.SecurityContext }, &corev1.PodSecurityContext{}},
		{"enableServiceLinks", nil, func(p *corev1.Pod) any { return *p.Spec.EnableServiceLinks }, true},
		{"enableServiceLinks false kept", func(p *corev1.Pod) { p.Spec.EnableServiceLinks = ptrTo(false) },
			func(p *corev1.Pod) any { return *p.Spec.EnableServiceLinks }, false},

		{"pull policy tag", nil, func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullIfNotPresent},
		{"pull policy latest", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox:latest" },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullAlways},
		{"pull policy no tag", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox" },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullAlways},
		{"pull policy registry port no tag", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "localhost:5000/busybox" },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullAlways},
		{"pull policy registry port and tag", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "localhost:5000/busybox:1.36" },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullIfNotPresent},
		{"pull policy digest", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox@sha256:" + sha },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullIfNotPresent},
		{"pull policy latest with digest", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox:latest@sha256:" + sha },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullAlways},
		{"pull policy kept", func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = corev1.PullNever },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullNever},
		{"pull policy init container", func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "i", Image: "x"}} },
			func(p *corev1.Pod) any { return p.Spec.InitContainers[0].ImagePullPolicy }, corev1.PullAlways},
		{"terminationMessagePath", nil, func(p *corev1.Pod) any { return p.Spec.Containers[0].TerminationMessagePath }, "/dev/termination-log"},
		{"terminationMessagePolicy", nil, func(p *corev1.Pod) any { return p.Spec.Containers[0].TerminationMessagePolicy }, corev1.TerminationMessageReadFile},
		{"port protocol", func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}} },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].Ports[0].Protocol }, corev1.ProtocolTCP},
		{"host network host port", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
		}, func(p *corev1.Pod) any { return p.Spec.Containers[0].Ports[0].HostPort }, int32(80)},
		{"no host port without host network", func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}} },
			func(p *corev1.Pod) any { return p.Spec.Containers[0].Ports[0].HostPort }, int32(0)},
		{"env fieldRef apiVersion", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		}, func(p *corev1.Pod) any { return p.Spec.Containers[0].Env[0].ValueFrom.FieldRef.APIVersion }, "v1"},
		{"probe defaults", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
		}, func(p *corev1.Pod) any {
			pr := p.Spec.Containers[0].LivenessProbe
			return []any{pr.TimeoutSeconds, pr.PeriodSeconds, pr.SuccessThreshold, pr.FailureThreshold, pr.HTTPGet.Path, pr.HTTPGet.Scheme}
		}, []any{int32(1), int32(10), int32(1), int32(3), "/", corev1.URISchemeHTTP}},
		{"readiness and startup probe defaults", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 5}
			p.Spec.Containers[0].StartupProbe = &corev1.Probe{FailureThreshold: 30}
		}, func(p *corev1.Pod) any {
			r, s := p.Spec.Containers[0].ReadinessProbe, p.Spec.Containers[0].StartupProbe
			return []int32{r.TimeoutSeconds, r.PeriodSeconds, s.PeriodSeconds, s.FailureThreshold}
		}, []int32{1, 5, 10, 30}},
		{"lifecycle httpGet", func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
		}, func(p *corev1.Pod) any {
			h := p.Spec.Containers[0].Lifecycle.PreStop.HTTPGet
			return []any{h.Path, h.Scheme}
		}, []any{"/", corev1.URISchemeHTTP}},
		{"requests from limits", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("64Mi")},
				Requests: corev1.ResourceList{"cpu": resource.MustParse("100m")},
			}
		}, func(p *corev1.Pod) any {
			r := p.Spec.Containers[0].Resources.Requests
			return []string{r.Cpu().String(), r.Memory().String()}
		}, []string{"100m", "64Mi"}},
		{"resources rounded to milli", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"cpu": resource.MustParse("0.0001")}
		}, func(p *corev1.Pod) any { return p.Spec.Containers[0].Resources.Limits.Cpu().String() }, "1m"},
		{"volume without source is emptyDir", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "scratch"}} },
			func(p *corev1.Pod) any { return p.Spec.Volumes[0].VolumeSource }, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{"emptyDir medium", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, func(p *corev1.Pod) any { return p.Spec.Volumes[0].EmptyDir.Medium }, corev1.StorageMediumDefault},
		{"hostPath type", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}}
		}, func(p *corev1.Pod) any { return p.Spec.Volumes[0].HostPath.Type }, ptrTo(corev1.HostPathUnset)},
		{"configMap defaultMode", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}}
		}, func(p *corev1.Pod) any { return *p.Spec.Volumes[0].ConfigMap.DefaultMode }, int32(0644)},
		{"secret defaultMode", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}}}
		}, func(p *corev1.Pod) any { return *p.Spec.Volumes[0].Secret.DefaultMode }, int32(0644)},
		{"secret defaultMode kept", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{DefaultMode: ptrTo(int32(0400))}}}}
		}, func(p *corev1.Pod) any { return *p.Spec.Volumes[0].Secret.DefaultMode }, int32(0400)},
		{"downwardAPI defaultMode and fieldRef", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "n", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			}}}}
		}, func(p *corev1.Pod) any {
			d := p.Spec.Volumes[0].DownwardAPI
			return []any{*d.DefaultMode, d.Items[0].FieldRef.APIVersion}
		}, []any{int32(0644), "v1"}},
		{"projected defaultMode", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}}},
			}}}}
		}, func(p *corev1.Pod) any {
			pr := p.Spec.Volumes[0].Projected
			return []any{*pr.DefaultMode, *pr.Sources[0].ServiceAccountToken.ExpirationSeconds}
		}, []any{int32(0644), int64(3600)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := minimalPod()
			if tt.setup != nil {
				tt.setup(pod)
			}
			SetDefaults(pod)
			if got := tt.got(pod); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			again := pod.DeepCopy()
			SetDefaults(again)
			if !reflect.DeepEqual(again, pod) {
				t.Fatalf("SetDefaults is not idempotent")
			}
		})
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestSetDefaultsNil(t *testing.T) {
	SetDefaults(nil) // must not panic
}
