package manifest

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// goodPod uses most of what Validate checks, all of it valid.
func goodPod() *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web.example", Namespace: "prod",
			Labels:      map[string]string{"app": "web", "example.com/tier": "front"},
			Annotations: map[string]string{"Example.com/Note": "any value at all"},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{
				{Name: "setup", Image: "busybox:1.36", Command: []string{"true"}},
				{Name: "proxy", Image: "envoy:1", RestartPolicy: &always,
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9901)}}}},
			},
			Containers: []corev1.Container{{
				Name: "server", Image: "registry.local:5000/web@sha256:" + sha,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP, HostPort: 5353}},
				Env: []corev1.EnvVar{
					{Name: "PLAIN", Value: "x"},
					{Name: "my.relaxed-name with space", Value: "ok since 1.34"},
					{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "LABEL", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "scratch", MountPath: "/tmp", SubPath: "t"}},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}},
					FailureThreshold: 5},
				StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
				Lifecycle:    &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("128Mi"), "example.com/gpu": resource.MustParse("1")},
					Requests: corev1.ResourceList{"cpu": resource.MustParse("250m")},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/data"}}},
				{Name: "scratch"},
				{Name: "unused-nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/e"}}},
			},
			ActiveDeadlineSeconds: ptrTo(int64(3600)),
			// Fields minipod does not act on are not rejected.
			NodeSelector:      map[string]string{"disk": "ssd"},
			Tolerations:       []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
			PriorityClassName: "high",
		},
	}
}

func TestValidateGood(t *testing.T) {
	for name, pod := range map[string]*corev1.Pod{"minimal": minimalPod(), "full": goodPod()} {
		SetDefaults(pod)
		if errs := Validate(pod); len(errs) != 0 {
			t.Errorf("%s: got errors %v, want none", name, errs)
		}
	}
}

func TestValidate(t *testing.T) {
	c0 := func(p *corev1.Pod) *corev1.Container { return &p.Spec.Containers[0] }
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   string // substring of one of the errors
	}{
		{"name required", func(p *corev1.Pod) { p.Name = "" }, "metadata.name: Required value"},
		{"name subdomain", func(p *corev1.Pod) { p.Name = "Web_1" }, `metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain`},
		{"namespace label", func(p *corev1.Pod) { p.Namespace = "a.b" }, `metadata.namespace: Invalid value: "a.b"`},
		{"label key", func(p *corev1.Pod) { p.Labels["bad key"] = "x" }, `metadata.labels: Invalid value: "bad key"`},
		{"label value", func(p *corev1.Pod) { p.Labels["ok"] = "bad value!" }, `metadata.labels: Invalid value: "bad value!"`},
		{"annotation key", func(p *corev1.Pod) { p.Annotations["-nope"] = "x" }, `metadata.annotations: Invalid value: "-nope"`},
		{"annotations too long", func(p *corev1.Pod) { p.Annotations["big"] = strings.Repeat("x", 256*1024) }, "metadata.annotations: Too long"},
		{"rollback annotation", func(p *corev1.Pod) { p.Annotations[AnnotationRollback] = "yes" },
			`metadata.annotations[minipod.io/rollback]: Unsupported value: "yes": supported values: "true", "false"`},
		{"progress deadline annotation", func(p *corev1.Pod) { p.Annotations[AnnotationProgressDeadline] = "300" },
			`metadata.annotations[minipod.io/progress-deadline]: Invalid value: "300": must be a positive duration like 90s or 5m`},
		{"progress deadline negative", func(p *corev1.Pod) { p.Annotations[AnnotationProgressDeadline] = "-1m" },
			`metadata.annotations[minipod.io/progress-deadline]: Invalid value: "-1m"`},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, "spec.containers: Required value"},
		{"container name required", func(p *corev1.Pod) { c0(p).Name = "" }, "spec.containers[0].name: Required value"},
		{"container name label", func(p *corev1.Pod) { c0(p).Name = "Server" }, `spec.containers[0].name: Invalid value: "Server"`},
		{"container name duplicate", func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, *c0(p)) }, `spec.containers[1].name: Duplicate value: "server"`},
		{"init container name clashes with app container", func(p *corev1.Pod) { p.Spec.InitContainers[0].Name = "server" }, `spec.initContainers[0].name: Duplicate value: "server"`},
		{"image required", func(p *corev1.Pod) { c0(p).Image = "" }, "spec.containers[0].image: Required value"},
		{"image blank", func(p *corev1.Pod) { c0(p).Image = "  " }, "spec.containers[0].image: Required value"},
		{"image padded", func(p *corev1.Pod) { c0(p).Image = " busybox" }, "spec.containers[0].image: Invalid value"},
		{"restartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, `spec.restartPolicy: Unsupported value: "Sometimes"`},
		{"hostUsers false with hostNetwork", func(p *corev1.Pod) { p.Spec.HostUsers = ptrTo(false); p.Spec.HostNetwork = true },
			"spec.hostNetwork: Forbidden: when `hostUsers` is false"},
		{"hostUsers false with hostPID", func(p *corev1.Pod) { p.Spec.HostUsers = ptrTo(false); p.Spec.HostPID = true },
			"spec.HostPID: Forbidden: when `hostUsers` is false"},
		{"hostUsers false with hostIPC", func(p *corev1.Pod) { p.Spec.HostUsers = ptrTo(false); p.Spec.HostIPC = true },
			"spec.HostIPC: Forbidden: when `hostUsers` is false"},
		{"hostUsers false with volumeDevices", func(p *corev1.Pod) {
			p.Spec.HostUsers = ptrTo(false)
			c0(p).VolumeDevices = []corev1.VolumeDevice{{Name: "d", DevicePath: "/dev/xvda"}}
		}, "spec.containers[0].volumeDevices: Forbidden: when `hostUsers` is false"},
		{"init restartPolicy", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].RestartPolicy = ptrTo(corev1.ContainerRestartPolicy("Sometimes"))
		}, `spec.initContainers[0].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`},
		{"probe on plain init container", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].LivenessProbe = c0(p).StartupProbe
		}, "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"},
		{"imagePullPolicy", func(p *corev1.Pod) { c0(p).ImagePullPolicy = "Sometimes" }, `spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes"`},
		{"terminationMessagePolicy", func(p *corev1.Pod) { c0(p).TerminationMessagePolicy = "Log" }, "spec.containers[0].terminationMessagePolicy: Unsupported value"},
		{"terminationGracePeriodSeconds", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(-1)) },
			"spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"},
		{"activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(0)) }, "spec.activeDeadlineSeconds: Invalid value: 0"},
		{"dnsPolicy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, `spec.dnsPolicy: Unsupported value: "Google"`},
		{"dnsPolicy None needs dnsConfig", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, "spec.dnsConfig: Required value"},
		{"dnsConfig nameserver", func(p *corev1.Pod) { p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"dns.example"}} },
			"spec.dnsConfig.nameservers[0]: Invalid value"},
		{"containerPort required", func(p *corev1.Pod) { c0(p).Ports[0].ContainerPort = 0 }, "spec.containers[0].ports[0].containerPort: Required value"},
		{"containerPort range", func(p *corev1.Pod) { c0(p).Ports[0].ContainerPort = 70000 }, "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"hostPort range", func(p *corev1.Pod) { c0(p).Ports[1].HostPort = -1 }, "spec.containers[0].ports[1].hostPort: Invalid value: -1"},
		{"port name", func(p *corev1.Pod) { c0(p).Ports[0].Name = "http_port" }, `spec.containers[0].ports[0].name: Invalid value: "http_port"`},
		{"port name too long", func(p *corev1.Pod) { c0(p).Ports[0].Name = "abcdefghijklmnop" }, "spec.containers[0].ports[0].name: Invalid value"},
		{"port name duplicate", func(p *corev1.Pod) { c0(p).Ports[1].Name = "http" }, `spec.containers[0].ports[1].name: Duplicate value: "http"`},
		{"port protocol", func(p *corev1.Pod) { c0(p).Ports[0].Protocol = "ICMP" }, `spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`},
		{"host port conflict", func(p *corev1.Pod) {
			p.Spec.InitContainers[1].Ports = []corev1.ContainerPort{{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP}}
		}, `spec.initContainers[1].ports[0].hostPort: Duplicate value: "5353/UDP"`},
		{"hostNetwork port mismatch", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "spec.containers[0].ports[1].hostPort: Invalid value: 5353: must match `containerPort` when `hostNetwork` is true"},
		{"env name required", func(p *corev1.Pod) { c0(p).Env[0].Name = "" }, "spec.containers[0].env[0].name: Required value"},
		{"env name with =", func(p *corev1.Pod) { c0(p).Env[0].Name = "A=B" }, `spec.containers[0].env[0].name: Invalid value: "A=B"`},
		{"env name non-printable", func(p *corev1.Pod) { c0(p).Env[0].Name = "A\tB" }, "spec.containers[0].env[0].name: Invalid value"},
		{"env value and valueFrom", func(p *corev1.Pod) { c0(p).Env[2].Value = "x" }, "spec.containers[0].env[2].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty"},
		{"env valueFrom empty", func(p *corev1.Pod) { c0(p).Env[2].ValueFrom = &corev1.EnvVarSource{} }, "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of"},
		{"env valueFrom two sources", func(p *corev1.Pod) {
			c0(p).Env[2].ValueFrom.SecretKeyRef = &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}
		}, "spec.containers[0].env[2].valueFrom: Invalid value: \"\": may not have more than one field specified at a time"},
		{"env fieldPath", func(p *corev1.Pod) { c0(p).Env[2].ValueFrom.FieldRef.FieldPath = "spec.containers" }, `spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.containers"`},
		{"env resource", func(p *corev1.Pod) { c0(p).Env[4].ValueFrom.ResourceFieldRef.Resource = "limits.gpu" }, "spec.containers[0].env[4].valueFrom.resourceFieldRef.resource: Unsupported value"},
		{"envFrom no source", func(p *corev1.Pod) { c0(p).EnvFrom = []corev1.EnvFromSource{{Prefix: "P_"}} }, "spec.containers[0].envFrom[0]: Invalid value"},
		{"volume name required", func(p *corev1.Pod) { p.Spec.Volumes[2].Name = "" }, "spec.volumes[2].name: Required value"},
		{"volume name label", func(p *corev1.Pod) { p.Spec.Volumes[2].Name = "Data" }, `spec.volumes[2].name: Invalid value: "Data"`},
		{"volume name duplicate", func(p *corev1.Pod) { p.Spec.Volumes[2].Name = "data" }, `spec.volumes[2].name: Duplicate value: "data"`},
		{"volume two sources", func(p *corev1.Pod) {
			p.Spec.Volumes[0].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}, "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"},
		{"hostPath path", func(p *corev1.Pod) { p.Spec.Volumes[0].HostPath.Path = "" }, "spec.volumes[0].hostPath.path: Required value"},
		{"hostPath type", func(p *corev1.Pod) { p.Spec.Volumes[0].HostPath.Type = ptrTo(corev1.HostPathType("Dir")) }, `spec.volumes[0].hostPath.type: Unsupported value: "Dir"`},
		{"secret defaultMode", func(p *corev1.Pod) {
			p.Spec.Volumes[2].VolumeSource = corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptrTo(int32(01000))}}
		}, "spec.volumes[2].secret.defaultMode: Invalid value: 512"},
		{"configMap item path", func(p *corev1.Pod) {
			p.Spec.Volumes[2].VolumeSource = corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Items: []corev1.KeyToPath{{Key: "k", Path: "../etc/passwd"}}}}
		}, "spec.volumes[2].configMap.items[0].path: Invalid value: \"../etc/passwd\": must not contain '..'"},
		{"mount of unknown volume", func(p *corev1.Pod) { c0(p).VolumeMounts[0].Name = "nope" }, `spec.containers[0].volumeMounts[0].name: Not found: "nope"`},
		{"mountPath required", func(p *corev1.Pod) { c0(p).VolumeMounts[0].MountPath = "" }, "spec.containers[0].volumeMounts[0].mountPath: Required value"},
		{"mountPath relative", func(p *corev1.Pod) { c0(p).VolumeMounts[0].MountPath = "data" }, `spec.containers[0].volumeMounts[0].mountPath: Invalid value: "data": must be an absolute path`},
		{"mountPath unique", func(p *corev1.Pod) { c0(p).VolumeMounts[1].MountPath = "/data" }, `spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique`},
		{"subPath escapes", func(p *corev1.Pod) { c0(p).VolumeMounts[1].SubPath = "../x" }, "spec.containers[0].volumeMounts[1].subPath: Invalid value"},
		{"mountPropagation unknown", func(p *corev1.Pod) {
			c0(p).VolumeMounts[0].MountPropagation = ptrTo(corev1.MountPropagationMode("Shared"))
		}, `spec.containers[0].volumeMounts[0].mountPropagation: Unsupported value: "Shared"`},
		{"Bidirectional unprivileged", func(p *corev1.Pod) {
			c0(p).VolumeMounts[0].MountPropagation = ptrTo(corev1.MountPropagationBidirectional)
		}, "spec.containers[0].volumeMounts[0].mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers"},
		{"Bidirectional in an unprivileged init container", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/d", MountPropagation: ptrTo(corev1.MountPropagationBidirectional)}}
			p.Spec.InitContainers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(false)}
		}, "spec.initContainers[0].volumeMounts[0].mountPropagation: Forbidden"},
		{"recursiveReadOnly with propagation", func(p *corev1.Pod) {
			m := &c0(p).VolumeMounts[0]
			m.ReadOnly, m.RecursiveReadOnly = true, ptrTo(corev1.RecursiveReadOnlyEnabled)
			m.MountPropagation = ptrTo(corev1.MountPropagationHostToContainer)
		}, "spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified when mountPropagation is None or not specified"},
		{"probe without handler", func(p *corev1.Pod) { c0(p).LivenessProbe.HTTPGet = nil }, "spec.containers[0].livenessProbe: Required value: must specify a handler type"},
		{"probe with two handlers", func(p *corev1.Pod) {
			c0(p).LivenessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}
		}, "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"},
		{"probe threshold", func(p *corev1.Pod) { c0(p).LivenessProbe.FailureThreshold = -1 }, "spec.containers[0].livenessProbe.failureThreshold: Invalid value: -1: must be greater than or equal to 1"},
		{"probe initial delay", func(p *corev1.Pod) { c0(p).LivenessProbe.InitialDelaySeconds = -1 }, "spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: -1"},
		{"liveness successThreshold", func(p *corev1.Pod) { c0(p).LivenessProbe.SuccessThreshold = 2 }, "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"},
		{"startup successThreshold", func(p *corev1.Pod) { c0(p).StartupProbe.SuccessThreshold = 3 }, "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"},
		{"readiness successThreshold may be more", func(p *corev1.Pod) {
			p.Spec.InitContainers[1].ReadinessProbe.SuccessThreshold = 3
			c0(p).Image = ""
		}, "spec.containers[0].image"},
		{"exec without command", func(p *corev1.Pod) { c0(p).StartupProbe.Exec.Command = nil }, "spec.containers[0].startupProbe.exec.command: Required value"},
		{"httpGet port", func(p *corev1.Pod) { c0(p).LivenessProbe.HTTPGet.Port = intstr.FromInt32(0) }, "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0"},
		{"httpGet scheme", func(p *corev1.Pod) { c0(p).LivenessProbe.HTTPGet.Scheme = "FTP" }, `spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP"`},
		{"lifecycle without handler", func(p *corev1.Pod) { c0(p).Lifecycle.PreStop.Sleep = nil }, "spec.containers[0].lifecycle.preStop: Required value: must specify a handler type"},
		{"lifecycle with two handlers", func(p *corev1.Pod) {
			c0(p).Lifecycle.PreStop.Exec = &corev1.ExecAction{Command: []string{"x"}}
		}, "spec.containers[0].lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type"},
		{"preStop sleep longer than grace", func(p *corev1.Pod) { c0(p).Lifecycle.PreStop.Sleep.Seconds = 60 }, "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 60: must be non-negative and less than terminationGracePeriodSeconds (30)"},
		{"requests above limits", func(p *corev1.Pod) { c0(p).Resources.Requests["cpu"] = resource.MustParse("2") }, `spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`},
		{"negative quantity", func(p *corev1.Pod) { c0(p).Resources.Limits["memory"] = resource.MustParse("-1Mi") }, `spec.containers[0].resources.limits[memory]: Invalid value: "-1Mi": must be greater than or equal to 0`},
		{"unknown resource", func(p *corev1.Pod) { c0(p).Resources.Limits["gpu"] = resource.MustParse("1") }, `spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers`},
		{"pod-level: unsupported resource", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"ephemeral-storage": resource.MustParse("1Gi")}}
		}, `spec.resources.limits[ephemeral-storage]: Unsupported value: "ephemeral-storage": supported values: "cpu", "hugepages-", "memory"`},
		{"pod-level: requests below the containers'", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("100m")}}
		}, `spec.resources.requests[cpu]: Invalid value: "100m": must be greater than or equal to aggregate container requests of 250m`},
		{"pod-level: a container limit above the pod's", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("500m")}, Requests: corev1.ResourceList{"cpu": resource.MustParse("2")}}
		}, `spec.resources.containers[0][cpu].limits: Invalid value: "1": must be less than or equal to pod limits of 500m`},
		{"pod-level: requests above limits", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("64Mi")}, Requests: corev1.ResourceList{"memory": resource.MustParse("128Mi")}}
		}, `spec.resources.requests: Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi`},
		{"fractional extended resource", func(p *corev1.Pod) { c0(p).Resources.Limits["example.com/gpu"] = resource.MustParse("500m") }, "spec.containers[0].resources.limits[example.com/gpu]: Invalid value: \"500m\": must be an integer"},
		{"ephemeral containers", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}, "spec.ephemeralContainers: Forbidden"},
		{"runAsUser", func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(-1))} }, "spec.securityContext.runAsUser: Invalid value: -1"},
		{"privileged without escalation", func(p *corev1.Pod) {
			c0(p).SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true), AllowPrivilegeEscalation: ptrTo(false)}
		}, "spec.containers[0].securityContext: Invalid value"},
		{"hostname", func(p *corev1.Pod) { p.Spec.Hostname = "a.b" }, `spec.hostname: Invalid value: "a.b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := goodPod()
			tt.mutate(pod)
			SetDefaults(pod)
			errs := Validate(pod)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if strings.Contains(e.Error(), tt.want) {
					return
				}
			}
			t.Fatalf("got errors %q, want one containing %q", got, tt.want)
		})
	}
}

// Bidirectional is fine for a privileged container, HostToContainer and None for any.
func TestValidateMountPropagation(t *testing.T) {
	pod := goodPod()
	c := &pod.Spec.Containers[0]
	c.VolumeMounts[0].MountPropagation = ptrTo(corev1.MountPropagationBidirectional)
	c.SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}
	pod.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "data", MountPath: "/a", MountPropagation: ptrTo(corev1.MountPropagationHostToContainer)},
		{Name: "data", MountPath: "/b", MountPropagation: ptrTo(corev1.MountPropagationNone), ReadOnly: true, RecursiveReadOnly: ptrTo(corev1.RecursiveReadOnlyIfPossible)},
	}
	SetDefaults(pod)
	if errs := Validate(pod); len(errs) != 0 {
		t.Fatalf("Validate: %v", errs)
	}
}

func TestValidateEveryProblem(t *testing.T) {
	pod := goodPod()
	pod.Spec.Containers[0].Image = ""
	pod.Spec.Containers[0].Ports[0].ContainerPort = 0
	pod.Spec.RestartPolicy = "Sometimes"
	SetDefaults(pod)
	errs := Validate(pod)
	want := []string{
		"spec.containers[0].image: Required value",
		"spec.containers[0].ports[0].containerPort: Required value",
		`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i := range want {
		if errs[i].Error() != want[i] {
			t.Errorf("error %d: got %q, want %q", i, errs[i].Error(), want[i])
		}
	}
}

func TestValidateNil(t *testing.T) {
	if errs := Validate(nil); len(errs) == 0 {
		t.Fatal("Validate(nil): got no errors")
	}
}

// What a pod's containers request together: app containers and sidecars at once, an init
// container beside the sidecars started before it, the larger figure counting.
func TestAggregateRequests(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	req := func(cpu string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse(cpu)}}
	}
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "side", RestartPolicy: &always, Resources: req("200m")},
			{Name: "init", Resources: req("1500m")},
		},
		Containers: []corev1.Container{{Name: "a", Resources: req("300m")}, {Name: "b", Resources: req("400m")}},
	}
	if got := AggregateRequests(spec)[corev1.ResourceCPU]; got.MilliValue() != 1700 {
		t.Errorf("init beside the sidecar: %s, want 1700m", got.String())
	}
	spec.InitContainers[1].Resources = req("100m")
	if got := AggregateRequests(spec)[corev1.ResourceCPU]; got.MilliValue() != 900 {
		t.Errorf("apps and sidecar: %s, want 900m", got.String())
	}
}

// A pod-level limit without a request gives the request, or the containers' aggregate request
// when they request the resource (the API server's defaulting).
func TestDefaultPodResources(t *testing.T) {
	spec := &corev1.PodSpec{
		Resources:  &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("1250m"), "memory": resource.MustParse("64Mi")}},
		Containers: []corev1.Container{{Name: "a", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"memory": resource.MustParse("8Mi")}}}},
	}
	defaultPodResources(spec)
	if got := spec.Resources.Requests[corev1.ResourceCPU]; got.MilliValue() != 1250 {
		t.Errorf("cpu request %s, want the limit", got.String())
	}
	if got := spec.Resources.Requests[corev1.ResourceMemory]; got.Value() != 8<<20 {
		t.Errorf("memory request %s, want the containers' 8Mi", got.String())
	}
}

// Container-level restartPolicy and restartPolicyRules (ContainerRestartRules, beta and on since
// 1.35) against the API server's validateContainerRestartPolicy and
// validateInitContainerRestartPolicy, with RestartAllContainersOnContainerExits (beta and on
// since 1.36).
func TestValidateRestartRules(t *testing.T) {
	rule := func(action corev1.ContainerRestartRuleAction, op corev1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) corev1.ContainerRestartRule {
		return corev1.ContainerRestartRule{Action: action, ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
	}
	restart42 := rule(corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleOnExitCodesOpIn, 42)
	policy := func(v string) *corev1.ContainerRestartPolicy { return ptrTo(corev1.ContainerRestartPolicy(v)) }
	many := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(i)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		init   bool // set on the first init container, else on the app container
		policy *corev1.ContainerRestartPolicy
		rules  []corev1.ContainerRestartRule
		want   []string
	}{
		{name: "policy Never", policy: policy("Never")},
		{name: "policy OnFailure", policy: policy("OnFailure")},
		{name: "policy Always", policy: policy("Always")},
		{name: "rule In", policy: policy("Never"), rules: []corev1.ContainerRestartRule{restart42}},
		{name: "rule NotIn, no values", policy: policy("Always"),
			rules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleOnExitCodesOpNotIn)}},
		{name: "20 rules, 255 codes", policy: policy("Never"),
			rules: slices.Repeat([]corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleOnExitCodesOpIn, many(255)...)}, 20)},
		{name: "init container policy Never with a rule", init: true, policy: policy("Never"), rules: []corev1.ContainerRestartRule{restart42}},
		{name: "init container policy OnFailure", init: true, policy: policy("OnFailure")},
		{name: "unknown policy", policy: policy("Sometimes"),
			want: []string{`spec.containers[0].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`}},
		{name: "rules without a policy", rules: []corev1.ContainerRestartRule{restart42},
			want: []string{"spec.containers[0].restartPolicy: Required value: must specify restartPolicy when restart rules are used"}},
		{name: "init rules without a policy", init: true, rules: []corev1.ContainerRestartRule{restart42},
			want: []string{"spec.initContainers[0].restartPolicy: Required value: must specify restartPolicy when restart rules are used"}},
		{name: "sidecar with a Restart rule", init: true, policy: policy("Always"), rules: []corev1.ContainerRestartRule{restart42}},
		{name: "sidecar with a RestartAllContainers rule", init: true, policy: policy("Always"),
			rules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleActionRestartAllContainers, corev1.ContainerRestartRuleOnExitCodesOpIn, 42)}},
		{name: "sidecar rules are validated", init: true, policy: policy("Always"),
			rules: []corev1.ContainerRestartRule{{Action: "Stop", ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: corev1.ContainerRestartRuleOnExitCodesOpIn}}},
			want:  []string{`spec.initContainers[0].restartPolicyRules[0].action: Unsupported value: "Stop": supported values: "Restart", "RestartAllContainers"`}},
		{name: "init container RestartAllContainers", init: true, policy: policy("Never"),
			rules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleActionRestartAllContainers, corev1.ContainerRestartRuleOnExitCodesOpIn, 42)}},
		{name: "no action", policy: policy("Never"),
			rules: []corev1.ContainerRestartRule{rule("", corev1.ContainerRestartRuleOnExitCodesOpIn, 1)},
			want:  []string{`spec.containers[0].restartPolicyRules[0].action: Unsupported value: "": supported values: "Restart", "RestartAllContainers"`}},
		{name: "RestartAllContainers", policy: policy("Never"),
			rules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleActionRestartAllContainers, corev1.ContainerRestartRuleOnExitCodesOpIn, 1)}},
		{name: "no exitCodes", policy: policy("Never"),
			rules: []corev1.ContainerRestartRule{{Action: corev1.ContainerRestartRuleActionRestart}},
			want:  []string{"spec.containers[0].restartPolicyRules[0].exitCodes: Required value: must be specified"}},
		{name: "unknown operator", policy: policy("Never"),
			rules: []corev1.ContainerRestartRule{restart42, rule(corev1.ContainerRestartRuleActionRestart, "Exists", 1)},
			want:  []string{`spec.containers[0].restartPolicyRules[1].exitCodes.operator: Unsupported value: "Exists": supported values: "In", "NotIn"`}},
		{name: "too many rules", policy: policy("Never"), rules: slices.Repeat([]corev1.ContainerRestartRule{restart42}, 21),
			want: []string{"spec.containers[0].restartPolicyRules: Too many: 21: must have at most 20 items"}},
		{name: "too many exit codes", policy: policy("Never"),
			rules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleOnExitCodesOpNotIn, many(256)...)},
			want:  []string{"spec.containers[0].restartPolicyRules[0].exitCodes.values: Too many: 256: must have at most 255 items"}},
		{name: "every problem of a rule, in order", policy: policy("Sometimes"),
			rules: []corev1.ContainerRestartRule{{Action: "Stop", ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Values: many(300)}}},
			want: []string{
				`spec.containers[0].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`,
				`spec.containers[0].restartPolicyRules[0].action: Unsupported value: "Stop": supported values: "Restart", "RestartAllContainers"`,
				`spec.containers[0].restartPolicyRules[0].exitCodes.operator: Unsupported value: "": supported values: "In", "NotIn"`,
				"spec.containers[0].restartPolicyRules[0].exitCodes.values: Too many: 300: must have at most 255 items",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := minimalPod()
			pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
			c := &pod.Spec.Containers[0]
			if tc.init {
				c = &pod.Spec.InitContainers[0]
			}
			c.RestartPolicy, c.RestartPolicyRules = tc.policy, tc.rules
			SetDefaults(pod)
			var got []string
			for _, err := range Validate(pod) {
				got = append(got, err.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got errors %q\nwant %q", got, tc.want)
			}
		})
	}
}
