package manifest

import (
	"fmt"
	"net"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks a defaulted pod the way the API server does on create, for the fields minipod
// supports, and returns every problem with its field path, in the order of the fields in the
// manifest (map keys sorted) so that messages are stable. Fields minipod does not act on are
// left alone: a manifest the API server accepts is never rejected for using them.
func Validate(pod *corev1.Pod) field.ErrorList {
	if pod == nil {
		return field.ErrorList{field.Required(field.NewPath(""), "no pod")}
	}
	var errs field.ErrorList
	errs = append(errs, validateMetadata(&pod.ObjectMeta, field.NewPath("metadata"))...)
	errs = append(errs, validateSpec(&pod.Spec, field.NewPath("spec"))...)
	return errs
}

// validateMetadata checks the metadata of a pod, a ConfigMap or a Secret: their names are all
// DNS subdomains.
func validateMetadata(pod *metav1.ObjectMeta, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	// A file has no generateName to fall back on: the name is what the file says.
	if pod.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "name or generateName is required"))
	} else {
		errs = append(errs, dnsSubdomain(pod.Name, p.Child("name"))...)
	}
	if pod.Namespace == "" {
		errs = append(errs, field.Required(p.Child("namespace"), ""))
	} else {
		errs = append(errs, dnsLabel(pod.Namespace, p.Child("namespace"))...)
	}
	for _, k := range sortedKeys(pod.Labels) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Child("labels"), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(pod.Labels[k]) {
			errs = append(errs, field.Invalid(p.Child("labels"), pod.Labels[k], msg))
		}
	}
	for _, k := range sortedKeys(pod.Annotations) {
		// Annotation keys are qualified names in any case.
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			errs = append(errs, field.Invalid(p.Child("annotations"), k, msg))
		}
	}
	if apivalidation.ValidateAnnotationsSize(pod.Annotations) != nil {
		errs = append(errs, field.TooLong(p.Child("annotations"), "", apivalidation.TotalAnnotationSizeLimitB))
	}
	errs = append(errs, validateUpdateAnnotations(pod.Annotations, p.Child("annotations"))...)
	return errs
}

// Annotations of minipod's own that steer updates (see pkg/pod): a value minipod would not
// understand is refused rather than silently read as the node's default.
const (
	AnnotationRollback         = "minipod.io/rollback"
	AnnotationProgressDeadline = "minipod.io/progress-deadline"
)

func validateUpdateAnnotations(a map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if v, ok := a[AnnotationRollback]; ok && v != "true" && v != "false" {
		errs = append(errs, field.NotSupported(p.Key(AnnotationRollback), v, []string{"true", "false"}))
	}
	if v, ok := a[AnnotationProgressDeadline]; ok {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			errs = append(errs, field.Invalid(p.Key(AnnotationProgressDeadline), v, "must be a positive duration like 90s or 5m"))
		}
	}
	return errs
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// MaxContainers is the most containers and init containers a pod may have together. The API
// server sets no such number (only its 1.5 MB object limit), but every container costs the
// node a containerd container and task, a runc process, a log file, a cgroup and its probes,
// and its status is in every answer of the API. Real pods have a handful: a few app
// containers, a service mesh's or log shipper's sidecars and some init steps, rarely more than
// twenty. 256 is over ten times that, so no pod meant for a node is refused, while a manifest of
// tens of thousands of containers (a 1 MiB file holds about 40,000) is refused in one message
// instead of being validated, reported and started container by container.
const MaxContainers = 256

func validateSpec(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes, verrs := validateVolumes(spec.Volumes, p.Child("volumes"))
	errs = append(errs, verrs...)

	grace := spec.TerminationGracePeriodSeconds
	names := map[string]bool{}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	if tooMany := tooManyContainers(spec, p); tooMany != nil {
		// The containers are not looked at one by one: that is the work the limit saves.
		errs = append(errs, tooMany)
	} else {
		for i := range spec.Containers {
			errs = append(errs, validateContainer(&spec.Containers[i], false, volumes, grace, names, p.Child("containers").Index(i))...)
		}
		// Init container names are checked against the app containers' names, so a clash is
		// reported on the init container, as the API server does.
		for i := range spec.InitContainers {
			errs = append(errs, validateContainer(&spec.InitContainers[i], true, volumes, grace, names, p.Child("initContainers").Index(i))...)
		}
		errs = append(errs, validateHostPorts(spec, p)...)
		errs = append(errs, validatePodResources(spec, p.Child("resources"))...)
	}
	if len(spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("ephemeralContainers"), "cannot be set on create"))
	}
	errs = append(errs, validateHostUsers(spec, p)...)

	switch spec.RestartPolicy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	case "":
		errs = append(errs, field.Required(p.Child("restartPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), spec.RestartPolicy,
			[]corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	errs = append(errs, validateDNS(spec, p)...)
	if spec.TerminationGracePeriodSeconds != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*spec.TerminationGracePeriodSeconds, p.Child("terminationGracePeriodSeconds"))...)
	}
	if spec.ActiveDeadlineSeconds != nil {
		if v := *spec.ActiveDeadlineSeconds; v < 1 || v > 1<<31-1 {
			errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(1, 1<<31-1)))
		}
	}
	if spec.Hostname != "" {
		errs = append(errs, dnsLabel(spec.Hostname, p.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, dnsLabel(spec.Subdomain, p.Child("subdomain"))...)
	}
	if spec.ServiceAccountName != "" {
		errs = append(errs, dnsSubdomain(spec.ServiceAccountName, p.Child("serviceAccountName"))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, dnsSubdomain(spec.NodeName, p.Child("nodeName"))...)
	}
	errs = append(errs, validatePodSecurityContext(spec, p.Child("securityContext"))...)
	return errs
}

func dnsLabel(v string, p *field.Path) field.ErrorList {
	return checkValue(validation.IsDNS1123Label, v, p)
}

func dnsSubdomain(v string, p *field.Path) field.ErrorList {
	return checkValue(validation.IsDNS1123Subdomain, v, p)
}

// checkValue is an Invalid error at p for each problem that check finds in v.
func checkValue(check func(string) []string, v string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range check(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func validateDNS(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch spec.DNSPolicy {
	case corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone:
	case "":
		errs = append(errs, field.Required(p.Child("dnsPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(p.Child("dnsPolicy"), spec.DNSPolicy,
			[]corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}))
	}
	c := spec.DNSConfig
	if spec.DNSPolicy == corev1.DNSNone && c == nil {
		errs = append(errs, field.Required(p.Child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
	}
	if c == nil {
		return errs
	}
	cp := p.Child("dnsConfig")
	if spec.DNSPolicy == corev1.DNSNone && len(c.Nameservers) == 0 {
		errs = append(errs, field.Required(cp.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
	}
	if len(c.Nameservers) > 3 {
		errs = append(errs, field.Invalid(cp.Child("nameservers"), c.Nameservers, "must not have more than 3 nameservers"))
	}
	for i, ns := range c.Nameservers {
		if net.ParseIP(ns) == nil {
			errs = append(errs, field.Invalid(cp.Child("nameservers").Index(i), ns, "must be a valid IP address"))
		}
	}
	if len(c.Searches) > 32 {
		errs = append(errs, field.Invalid(cp.Child("searches"), c.Searches, "must not have more than 32 search paths"))
	}
	for i, s := range c.Searches {
		// A trailing dot means fully qualified; "." alone is allowed by resolv.conf.
		if s == "." {
			continue
		}
		errs = append(errs, dnsSubdomain(strings.TrimSuffix(s, "."), cp.Child("searches").Index(i))...)
	}
	for i, o := range c.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(cp.Child("options").Index(i).Child("name"), "must not be empty"))
		}
	}
	return errs
}

func validatePodSecurityContext(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	sc := spec.SecurityContext
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, userID(sc.RunAsUser, p.Child("runAsUser"))...)
	errs = append(errs, groupID(sc.RunAsGroup, p.Child("runAsGroup"))...)
	errs = append(errs, groupID(sc.FSGroup, p.Child("fsGroup"))...)
	for i := range sc.SupplementalGroups {
		errs = append(errs, groupID(&sc.SupplementalGroups[i], p.Child("supplementalGroups").Index(i))...)
	}
	errs = append(errs, validateSysctls(sc.Sysctls, spec.HostNetwork, spec.HostIPC, p.Child("sysctls"))...)
	return errs
}

// ---- sysctls ----

// SysctlMaxLength is the longest sysctl name the API server accepts.
const SysctlMaxLength = 253

// sysctlNameRE is the API server's rule for a sysctl name (IsValidSysctlName in
// k8s.io/kubernetes pkg/apis/core/validation): segments of lowercase letters, digits, '-' and
// '_' that begin and end with a letter or digit, separated by '.' or '/' (sysctl.d(5) accepts
// both: net/ipv4/ip_forward is net.ipv4.ip_forward).
var sysctlNameRE = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

// validateSysctls does what the API server's validateSysctls does on create: every name is
// present, well formed and given once, and a sysctl of the network (IPC) namespace is refused
// in a pod that shares the host's network (IPC) namespace, where setting it would change the
// node. Which sysctls a pod may set at all is the node's policy (pkg/policy), as it is the
// kubelet's.
func validateSysctls(sysctls []corev1.Sysctl, hostNetwork, hostIPC bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, s := range sysctls {
		np := p.Index(i).Child("name")
		switch {
		case s.Name == "":
			errs = append(errs, field.Required(np, ""))
		case len(s.Name) > SysctlMaxLength || !sysctlNameRE.MatchString(s.Name):
			errs = append(errs, field.Invalid(np, s.Name, fmt.Sprintf("must have at most %d characters and match regex %s", SysctlMaxLength, sysctlNameRE)))
		case seen[s.Name]:
			errs = append(errs, field.Duplicate(np, s.Name))
		}
		seen[s.Name] = true
		switch ns := SysctlNamespace(s.Name); {
		case hostNetwork && ns == NetNamespace:
			errs = append(errs, field.Invalid(np, s.Name, "may not be specified when 'hostNetwork' is true"))
		case hostIPC && ns == IPCNamespace:
			errs = append(errs, field.Invalid(np, s.Name, "may not be specified when 'hostIPC' is true"))
		}
	}
	return errs
}

// Namespaces of sysctls, as SysctlNamespace returns them.
const (
	NetNamespace = "net" // the pod's network namespace
	IPCNamespace = "ipc" // the pod's IPC namespace
)

// ipcSysctls and namespacedPrefixes are the sysctls Linux keeps per namespace, as the kubelet
// knows them (k8s.io/component-helpers/node/util/sysctl, namespace.go). kernel.shm and
// kernel.msg stand for the prefixes kernel.shm* and kernel.msg* in an allow list.
var (
	ipcSysctls = []string{"kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
		"kernel.shm", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.msg"}
	namespacedPrefixes = []struct{ prefix, ns string }{{"net.", NetNamespace}, {"fs.mqueue.", IPCNamespace}}
)

// SysctlNamespace is the namespace a sysctl (or the prefix of a sysctl pattern, before its
// '*') belongs to: NetNamespace, IPCNamespace, or "" when it is not known to be namespaced,
// that is when setting it would change the whole node. The name may use '/' as separator.
func SysctlNamespace(name string) string {
	name = NormalizeSysctl(name)
	if slices.Contains(ipcSysctls, name) {
		return IPCNamespace
	}
	for _, p := range namespacedPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.ns
		}
	}
	return ""
}

// NormalizeSysctl writes a sysctl name with '.' as its separator, as sysctl.d(5) and the
// kubelet read it: when the first separator is '/', every '/' is a separator and every '.' a
// part of a segment (net/ipv4/conf/eth0.100/rp_filter is net.ipv4.conf.eth0/100.rp_filter);
// otherwise the name is returned as it is.
func NormalizeSysctl(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

func userID(id *int64, p *field.Path) field.ErrorList {
	if id == nil {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsValidUserID(*id) {
		errs = append(errs, field.Invalid(p, *id, msg))
	}
	return errs
}

func groupID(id *int64, p *field.Path) field.ErrorList {
	if id == nil {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsValidGroupID(*id) {
		errs = append(errs, field.Invalid(p, *id, msg))
	}
	return errs
}

// ---- containers ----

func validateContainer(c *corev1.Container, init bool, volumes map[string]corev1.VolumeSource, grace *int64, names map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(p.Child("name"), ""))
	case names[c.Name]:
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	default:
		errs = append(errs, dnsLabel(c.Name, p.Child("name"))...)
	}
	names[c.Name] = true

	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	} else if strings.TrimSpace(c.Image) != c.Image {
		errs = append(errs, field.Invalid(p.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	case "":
		errs = append(errs, field.Required(p.Child("imagePullPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(p.Child("imagePullPolicy"), c.ImagePullPolicy,
			[]corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
	}
	switch c.TerminationMessagePolicy {
	case corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError:
	case "":
		errs = append(errs, field.Required(p.Child("terminationMessagePolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(p.Child("terminationMessagePolicy"), c.TerminationMessagePolicy,
			[]corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}))
	}

	errs = append(errs, validateRestartPolicy(c, p)...)
	sidecar := init && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	if init && !sidecar {
		// A plain init container runs to completion: probes and hooks have nothing to act on.
		const why = "may not be set for init containers without restartPolicy=Always"
		if c.Lifecycle != nil {
			errs = append(errs, field.Forbidden(p.Child("lifecycle"), why))
		}
		if c.LivenessProbe != nil {
			errs = append(errs, field.Forbidden(p.Child("livenessProbe"), why))
		}
		if c.ReadinessProbe != nil {
			errs = append(errs, field.Forbidden(p.Child("readinessProbe"), why))
		}
		if c.StartupProbe != nil {
			errs = append(errs, field.Forbidden(p.Child("startupProbe"), why))
		}
	} else {
		errs = append(errs, validateProbe(c.LivenessProbe, probeLiveness, p.Child("livenessProbe"))...)
		errs = append(errs, validateProbe(c.ReadinessProbe, probeReadiness, p.Child("readinessProbe"))...)
		errs = append(errs, validateProbe(c.StartupProbe, probeStartup, p.Child("startupProbe"))...)
		errs = append(errs, validateLifecycle(c.Lifecycle, grace, p.Child("lifecycle"))...)
	}

	errs = append(errs, validatePorts(c.Ports, p.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c, volumes, p.Child("volumeMounts"))...)
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	errs = append(errs, validateSecurityContext(c.SecurityContext, p.Child("securityContext"))...)
	return errs
}

// The container-level restart policies, the restart rules' operators and their actions, each
// list sorted as the API server lists them in its messages.
var (
	containerRestartPolicies = []corev1.ContainerRestartPolicy{
		corev1.ContainerRestartPolicyAlways, corev1.ContainerRestartPolicyNever, corev1.ContainerRestartPolicyOnFailure,
	}
	restartRuleOperators = []corev1.ContainerRestartRuleOnExitCodesOperator{
		corev1.ContainerRestartRuleOnExitCodesOpIn, corev1.ContainerRestartRuleOnExitCodesOpNotIn,
	}
	// RestartAllContainers comes with RestartAllContainersOnContainerExits (beta and on since
	// 1.36).
	restartRuleActions = []corev1.ContainerRestartRuleAction{
		corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleActionRestartAllContainers,
	}
)

// Limits of the API server on restart rules.
const (
	maxRestartRules     = 20
	maxRestartExitCodes = 255
)

// validateRestartPolicy checks a container's restartPolicy and restartPolicyRules as the API
// server does with ContainerRestartRules (beta and on since 1.35) and
// RestartAllContainersOnContainerExits (beta and on since 1.36): any container may set one of
// the three policies, overriding the pod's, and rules that restart it, or every container of
// the pod, on some exit codes; rules need an explicit policy. With the second gate a sidecar
// (an init container with restartPolicy Always) takes rules too.
func validateRestartPolicy(c *corev1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	policy, rules := c.RestartPolicy, c.RestartPolicyRules
	switch {
	case policy == nil && len(rules) == 0:
		return nil
	case policy == nil:
		errs = append(errs, field.Required(p.Child("restartPolicy"), "must specify restartPolicy when restart rules are used"))
	case !slices.Contains(containerRestartPolicies, *policy):
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), *policy, containerRestartPolicies))
	}
	rp := p.Child("restartPolicyRules")
	if len(rules) > maxRestartRules {
		errs = append(errs, field.TooMany(rp, len(rules), maxRestartRules))
	}
	for i, r := range rules {
		ip := rp.Index(i)
		if !slices.Contains(restartRuleActions, r.Action) {
			errs = append(errs, field.NotSupported(ip.Child("action"), r.Action, restartRuleActions))
		}
		if r.ExitCodes == nil {
			errs = append(errs, field.Required(ip.Child("exitCodes"), "must be specified"))
			continue
		}
		ep := ip.Child("exitCodes")
		if !slices.Contains(restartRuleOperators, r.ExitCodes.Operator) {
			errs = append(errs, field.NotSupported(ep.Child("operator"), r.ExitCodes.Operator, restartRuleOperators))
		}
		if len(r.ExitCodes.Values) > maxRestartExitCodes {
			errs = append(errs, field.TooMany(ep.Child("values"), len(r.ExitCodes.Values), maxRestartExitCodes))
		}
	}
	return errs
}

func validateSecurityContext(sc *corev1.SecurityContext, p *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, userID(sc.RunAsUser, p.Child("runAsUser"))...)
	errs = append(errs, groupID(sc.RunAsGroup, p.Child("runAsGroup"))...)
	if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		errs = append(errs, field.Invalid(p, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
	}
	return errs
}

// ---- ports ----

var protocols = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

func validatePorts(ports []corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		ip := p.Index(i)
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), port.Name, msg))
			}
			if names[port.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(ip.Child("containerPort"), ""))
		} else {
			errs = append(errs, portNumber(int(port.ContainerPort), ip.Child("containerPort"))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, portNumber(int(port.HostPort), ip.Child("hostPort"))...)
		}
		switch {
		case port.Protocol == "":
			errs = append(errs, field.Required(ip.Child("protocol"), ""))
		case !slices.Contains(protocols, port.Protocol):
			errs = append(errs, field.NotSupported(ip.Child("protocol"), port.Protocol, protocols))
		}
	}
	return errs
}

func portNumber(n int, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(n) {
		errs = append(errs, field.Invalid(p, n, msg))
	}
	return errs
}

func portNumOrName(port intstr.IntOrString, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch port.Type {
	case intstr.Int:
		errs = append(errs, portNumber(int(port.IntVal), p)...)
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(p, port.StrVal, msg))
		}
	default:
		errs = append(errs, field.Invalid(p, port, "must be an integer or string"))
	}
	return errs
}

// tooManyContainers is the error of a pod with more than MaxContainers containers and init
// containers together, on spec.containers when they alone are too many, else on
// spec.initContainers; nil when there are not too many.
func tooManyContainers(spec *corev1.PodSpec, p *field.Path) *field.Error {
	apps, inits := len(spec.Containers), len(spec.InitContainers)
	if apps+inits <= MaxContainers {
		return nil
	}
	if apps > MaxContainers {
		e := field.TooMany(p.Child("containers"), apps, MaxContainers)
		e.Detail += fmt.Sprintf(" (a pod may have at most %d containers and init containers together)", MaxContainers)
		return e
	}
	e := field.TooMany(p.Child("initContainers"), inits, MaxContainers-apps)
	e.Detail += fmt.Sprintf(" (a pod may have at most %d containers and init containers together, and %s has %d)", MaxContainers, p.Child("containers"), apps)
	return e
}

// validateHostPorts rejects two containers binding the same host port, and with hostNetwork a
// hostPort that is not the containerPort (the container port is the host port there).
func validateHostPorts(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	check := func(cs []corev1.Container, cp *field.Path) {
		for i := range cs {
			for j, port := range cs[i].Ports {
				pp := cp.Index(i).Child("ports").Index(j)
				if spec.HostNetwork && port.HostPort != port.ContainerPort {
					errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, "must match `containerPort` when `hostNetwork` is true"))
				}
				if port.HostPort == 0 {
					continue
				}
				key := fmt.Sprintf("%s/%d/%s", port.HostIP, port.HostPort, port.Protocol)
				if seen[key] {
					errs = append(errs, field.Duplicate(pp.Child("hostPort"), fmt.Sprintf("%d/%s", port.HostPort, port.Protocol)))
				}
				seen[key] = true
			}
		}
	}
	check(spec.Containers, p.Child("containers"))
	check(spec.InitContainers, p.Child("initContainers"))
	return errs
}

// ---- env ----

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ip := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			// The current rule (RelaxedEnvironmentVariableValidation, GA): any printable ASCII
			// but '='.
			for _, msg := range validation.IsRelaxedEnvVarName(ev.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), ev.Name, msg))
			}
		}
		errs = append(errs, validateEnvVarSource(ev, ip.Child("valueFrom"))...)
	}
	return errs
}

var (
	envFieldPaths = []string{
		"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
		"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
	}
	volumeFieldPaths    = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}
	resourceFieldPaths  = []string{"limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"}
	subscriptedFieldRE  = regexp.MustCompile(`^(metadata\.(?:labels|annotations))\['(.*)'\]$`)
	hugePagesFieldPaths = []string{"limits.hugepages-", "requests.hugepages-"}
)

func validateEnvVarSource(ev corev1.EnvVar, p *field.Path) field.ErrorList {
	vf := ev.ValueFrom
	if vf == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if vf.FieldRef != nil {
		n++
		errs = append(errs, validateFieldRef(vf.FieldRef, envFieldPaths, p.Child("fieldRef"))...)
	}
	if vf.ResourceFieldRef != nil {
		n++
		errs = append(errs, validateResourceFieldRef(vf.ResourceFieldRef, false, p.Child("resourceFieldRef"))...)
	}
	if vf.ConfigMapKeyRef != nil {
		n++
		errs = append(errs, keyRef(vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key, p.Child("configMapKeyRef"))...)
	}
	if vf.SecretKeyRef != nil {
		n++
		errs = append(errs, keyRef(vf.SecretKeyRef.Name, vf.SecretKeyRef.Key, p.Child("secretKeyRef"))...)
	}
	if vf.FileKeyRef != nil {
		n++
	}
	switch {
	case n == 0:
		errs = append(errs, field.Invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"))
	case n > 1:
		errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	if ev.Value != "" {
		errs = append(errs, field.Invalid(p, "", "may not be specified when `value` is not empty"))
	}
	return errs
}

func keyRef(name, key string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(p.Child("key"), key, msg))
		}
	}
	return errs
}

func validateFieldRef(f *corev1.ObjectFieldSelector, allowed []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case f.APIVersion == "":
		return append(errs, field.Required(p.Child("apiVersion"), ""))
	case f.APIVersion != "v1":
		return append(errs, field.Invalid(p.Child("apiVersion"), f.APIVersion, "only v1 is supported"))
	case f.FieldPath == "":
		return append(errs, field.Required(p.Child("fieldPath"), ""))
	}
	if m := subscriptedFieldRE.FindStringSubmatch(f.FieldPath); m != nil {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(m[2])) {
			errs = append(errs, field.Invalid(p.Child("fieldPath"), f.FieldPath, msg))
		}
		return errs
	}
	if !slices.Contains(allowed, f.FieldPath) {
		errs = append(errs, field.NotSupported(p.Child("fieldPath"), f.FieldPath, allowed))
	}
	return errs
}

func validateResourceFieldRef(f *corev1.ResourceFieldSelector, volume bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if volume && f.ContainerName == "" {
		errs = append(errs, field.Required(p.Child("containerName"), ""))
	}
	switch {
	case f.Resource == "":
		errs = append(errs, field.Required(p.Child("resource"), ""))
	case slices.Contains(resourceFieldPaths, f.Resource):
	case strings.HasPrefix(f.Resource, hugePagesFieldPaths[0]), strings.HasPrefix(f.Resource, hugePagesFieldPaths[1]):
	default:
		errs = append(errs, field.NotSupported(p.Child("resource"), f.Resource, resourceFieldPaths))
	}
	return errs
}

func validateEnvFrom(envFrom []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range envFrom {
		ip := p.Index(i)
		if ef.Prefix != "" {
			for _, msg := range validation.IsRelaxedEnvVarName(ef.Prefix) {
				errs = append(errs, field.Invalid(ip.Child("prefix"), ef.Prefix, msg))
			}
		}
		n := 0
		if ef.ConfigMapRef != nil {
			n++
			if ef.ConfigMapRef.Name == "" {
				errs = append(errs, field.Required(ip.Child("configMapRef", "name"), ""))
			}
		}
		if ef.SecretRef != nil {
			n++
			if ef.SecretRef.Name == "" {
				errs = append(errs, field.Required(ip.Child("secretRef", "name"), ""))
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(ip, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ip, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// ---- probes and hooks ----

type probeKind int

const (
	probeLiveness probeKind = iota
	probeReadiness
	probeStartup
)

func validateProbe(pr *corev1.Probe, kind probeKind, p *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, validateHandler(handlerSet{
		"exec": pr.Exec != nil, "httpGet": pr.HTTPGet != nil, "tcpSocket": pr.TCPSocket != nil, "grpc": pr.GRPC != nil,
	}, p)...)
	errs = append(errs, validateExec(pr.Exec, p.Child("exec"))...)
	errs = append(errs, validateHTTPGet(pr.HTTPGet, p.Child("httpGet"))...)
	errs = append(errs, validateTCPSocket(pr.TCPSocket, p.Child("tcpSocket"))...)
	if pr.GRPC != nil {
		errs = append(errs, portNumber(int(pr.GRPC.Port), p.Child("grpc", "port"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(pr.InitialDelaySeconds), p.Child("initialDelaySeconds"))...)
	// Zero is defaulted away; what is left below one would make the prober spin or never decide.
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"timeoutSeconds", pr.TimeoutSeconds}, {"periodSeconds", pr.PeriodSeconds},
		{"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold},
	} {
		if f.v < 1 {
			errs = append(errs, field.Invalid(p.Child(f.name), f.v, "must be greater than or equal to 1"))
		}
	}
	if kind != probeReadiness && pr.SuccessThreshold != 1 && pr.SuccessThreshold >= 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if pr.TerminationGracePeriodSeconds != nil {
		if kind == probeReadiness {
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *pr.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
		} else if *pr.TerminationGracePeriodSeconds <= 0 {
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *pr.TerminationGracePeriodSeconds, "must be greater than 0"))
		}
	}
	return errs
}

// handlerSet maps a handler's field name to whether it is set; names are checked in a fixed
// order so that the error is stable.
type handlerSet map[string]bool

var handlerOrder = []string{"exec", "httpGet", "tcpSocket", "grpc", "sleep"}

func validateHandler(h handlerSet, p *field.Path) field.ErrorList {
	n := 0
	for _, name := range handlerOrder {
		if h[name] {
			n++
			if n > 1 {
				return field.ErrorList{field.Forbidden(p.Child(name), "may not specify more than 1 handler type")}
			}
		}
	}
	if n == 0 {
		return field.ErrorList{field.Required(p, "must specify a handler type")}
	}
	return nil
}

func validateExec(e *corev1.ExecAction, p *field.Path) field.ErrorList {
	if e != nil && len(e.Command) == 0 {
		return field.ErrorList{field.Required(p.Child("command"), "")}
	}
	return nil
}

func validateHTTPGet(h *corev1.HTTPGetAction, p *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	}
	errs = append(errs, portNumOrName(h.Port, p.Child("port"))...)
	if h.Scheme != corev1.URISchemeHTTP && h.Scheme != corev1.URISchemeHTTPS {
		errs = append(errs, field.NotSupported(p.Child("scheme"), h.Scheme, []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}))
	}
	for i, hdr := range h.HTTPHeaders {
		for _, msg := range validation.IsHTTPHeaderName(hdr.Name) {
			errs = append(errs, field.Invalid(p.Child("httpHeaders").Index(i).Child("name"), hdr.Name, msg))
		}
	}
	return errs
}

func validateTCPSocket(t *corev1.TCPSocketAction, p *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	return portNumOrName(t.Port, p.Child("port"))
}

func validateLifecycle(l *corev1.Lifecycle, grace *int64, p *field.Path) field.ErrorList {
	if l == nil {
		return nil
	}
	var errs field.ErrorList
	for _, hook := range []struct {
		name string
		h    *corev1.LifecycleHandler
	}{{"postStart", l.PostStart}, {"preStop", l.PreStop}} {
		if hook.h == nil {
			continue
		}
		hp := p.Child(hook.name)
		h := hook.h
		errs = append(errs, validateHandler(handlerSet{
			"exec": h.Exec != nil, "httpGet": h.HTTPGet != nil, "tcpSocket": h.TCPSocket != nil, "sleep": h.Sleep != nil,
		}, hp)...)
		errs = append(errs, validateExec(h.Exec, hp.Child("exec"))...)
		errs = append(errs, validateHTTPGet(h.HTTPGet, hp.Child("httpGet"))...)
		errs = append(errs, validateTCPSocket(h.TCPSocket, hp.Child("tcpSocket"))...)
		if h.Sleep != nil && grace != nil && (h.Sleep.Seconds < 0 || h.Sleep.Seconds > *grace) {
			errs = append(errs, field.Invalid(hp.Child("sleep"), h.Sleep.Seconds,
				fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *grace)))
		}
	}
	return errs
}

// ---- resources ----

func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, list := range []struct {
		name string
		rl   corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for _, rn := range sortedKeys(list.rl) {
			q, name := list.rl[rn], string(rn)
			kp := p.Child(list.name).Key(name)
			errs = append(errs, validateResourceName(name, kp)...)
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(kp, q.String(), apivalidation.IsNegativeErrorMsg))
			}
			if integerResource(name) && q.MilliValue()%1000 != 0 {
				errs = append(errs, field.Invalid(kp, q.String(), "must be an integer"))
			}
		}
	}
	for _, name := range sortedKeys(r.Requests) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests"), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return errs
}

func isStandardContainerResource(name string) bool {
	switch name {
	case string(corev1.ResourceCPU), string(corev1.ResourceMemory), string(corev1.ResourceEphemeralStorage):
		return true
	}
	return strings.HasPrefix(name, corev1.ResourceHugePagesPrefix)
}

// Hugepages and extended resources (vendor.example/gpu) come in whole units.
func integerResource(name string) bool {
	return strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) ||
		(strings.Contains(name, "/") && !strings.Contains(name, "kubernetes.io/"))
}

func validateResourceName(name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	if len(errs) == 0 && !strings.Contains(name, "/") && !isStandardContainerResource(name) {
		errs = append(errs, field.Invalid(p, name, "must be a standard resource for containers"))
	}
	return errs
}

// ---- volumes ----

// countSources counts the set volume sources. Reflection keeps the count right when a new
// Kubernetes version adds a source type: every source is a pointer field of VolumeSource.
func countSources(vs *corev1.VolumeSource) int {
	n := 0
	v := reflect.ValueOf(vs).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			n++
		}
	}
	return n
}

// sourceNames lists the JSON names of the set sources, in declaration order.
func sourceNames(vs *corev1.VolumeSource) []string {
	var names []string
	v := reflect.ValueOf(vs).Elem()
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			names = append(names, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
		}
	}
	return names
}

func validateVolumes(vols []corev1.Volume, p *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	byName := map[string]corev1.VolumeSource{}
	for i := range vols {
		v := &vols[i]
		ip := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case hasKey(byName, v.Name):
			errs = append(errs, field.Duplicate(ip.Child("name"), v.Name))
		default:
			errs = append(errs, dnsLabel(v.Name, ip.Child("name"))...)
		}
		if v.Name != "" && !hasKey(byName, v.Name) {
			byName[v.Name] = v.VolumeSource
		}
		switch names := sourceNames(&v.VolumeSource); {
		case len(names) == 0:
			errs = append(errs, field.Required(ip, "must specify a volume type"))
		case len(names) > 1:
			errs = append(errs, field.Forbidden(ip.Child(names[1]), "may not specify more than 1 volume type"))
		}
		errs = append(errs, validateVolumeSource(&v.VolumeSource, ip)...)
	}
	return byName, errs
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
	corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

// validateVolumeSource checks the sources minipod can mount; others are left to whoever
// implements them.
func validateVolumeSource(vs *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if hp := vs.HostPath; hp != nil {
		hpp := p.Child("hostPath")
		if hp.Path == "" {
			errs = append(errs, field.Required(hpp.Child("path"), ""))
		} else if hasDotDot(hp.Path) {
			errs = append(errs, field.Invalid(hpp.Child("path"), hp.Path, "must not contain '..'"))
		}
		if hp.Type != nil && !slices.Contains(hostPathTypes, *hp.Type) {
			errs = append(errs, field.NotSupported(hpp.Child("type"), *hp.Type, hostPathTypes))
		}
	}
	if ed := vs.EmptyDir; ed != nil && ed.SizeLimit != nil && ed.SizeLimit.Sign() < 0 {
		errs = append(errs, field.Forbidden(p.Child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity"))
	}
	if cm := vs.ConfigMap; cm != nil {
		cp := p.Child("configMap")
		if cm.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), ""))
		}
		errs = append(errs, fileMode(cm.DefaultMode, cp.Child("defaultMode"))...)
		errs = append(errs, keyToPaths(cm.Items, cp.Child("items"))...)
	}
	if s := vs.Secret; s != nil {
		sp := p.Child("secret")
		if s.SecretName == "" {
			errs = append(errs, field.Required(sp.Child("secretName"), ""))
		}
		errs = append(errs, fileMode(s.DefaultMode, sp.Child("defaultMode"))...)
		errs = append(errs, keyToPaths(s.Items, sp.Child("items"))...)
	}
	if d := vs.DownwardAPI; d != nil {
		dp := p.Child("downwardAPI")
		errs = append(errs, fileMode(d.DefaultMode, dp.Child("defaultMode"))...)
		errs = append(errs, downwardAPIItems(d.Items, dp.Child("items"))...)
	}
	if pr := vs.Projected; pr != nil {
		pp := p.Child("projected")
		errs = append(errs, fileMode(pr.DefaultMode, pp.Child("defaultMode"))...)
		for i, s := range pr.Sources {
			sp := pp.Child("sources").Index(i)
			n := 0
			for _, set := range []bool{s.Secret != nil, s.ConfigMap != nil, s.DownwardAPI != nil, s.ServiceAccountToken != nil, s.ClusterTrustBundle != nil, s.PodCertificate != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
			}
			if s.Secret != nil {
				errs = append(errs, keyToPaths(s.Secret.Items, sp.Child("secret", "items"))...)
			}
			if s.ConfigMap != nil {
				errs = append(errs, keyToPaths(s.ConfigMap.Items, sp.Child("configMap", "items"))...)
			}
			if s.DownwardAPI != nil {
				errs = append(errs, downwardAPIItems(s.DownwardAPI.Items, sp.Child("downwardAPI", "items"))...)
			}
		}
	}
	return errs
}

func fileMode(m *int32, p *field.Path) field.ErrorList {
	if m != nil && (*m < 0 || *m > 0777) {
		return field.ErrorList{field.Invalid(p, *m, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

func keyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		}
		errs = append(errs, relativePath(it.Path, ip.Child("path"))...)
		errs = append(errs, fileMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

func downwardAPIItems(items []corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, relativePath(it.Path, ip.Child("path"))...)
		errs = append(errs, fileMode(it.Mode, ip.Child("mode"))...)
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case it.FieldRef != nil:
			errs = append(errs, validateFieldRef(it.FieldRef, volumeFieldPaths, ip.Child("fieldRef"))...)
		case it.ResourceFieldRef != nil:
			errs = append(errs, validateResourceFieldRef(it.ResourceFieldRef, true, ip.Child("resourceFieldRef"))...)
		default:
			errs = append(errs, field.Required(ip, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return errs
}

// relativePath is the rule for file names inside a volume: relative, and never escaping it.
func relativePath(v string, p *field.Path) field.ErrorList {
	switch {
	case v == "":
		return field.ErrorList{field.Required(p, "")}
	case path.IsAbs(v):
		return field.ErrorList{field.Invalid(p, v, "must be a relative path")}
	case hasDotDot(v):
		return field.ErrorList{field.Invalid(p, v, "must not contain '..'")}
	}
	return nil
}

func hasDotDot(v string) bool {
	return slices.Contains(strings.Split(v, "/"), "..")
}

var (
	propagationModes = []corev1.MountPropagationMode{corev1.MountPropagationNone, corev1.MountPropagationHostToContainer, corev1.MountPropagationBidirectional}
	recursiveModes   = []corev1.RecursiveReadOnlyMode{corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled}
)

func validateVolumeMounts(c *corev1.Container, volumes map[string]corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	for i, m := range c.VolumeMounts {
		ip := p.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else if !hasKey(volumes, m.Name) {
			errs = append(errs, field.NotFound(ip.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(ip.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			// The API server lets this through, but the OCI runtime refuses a relative mount
			// destination; saying so here beats a container that never starts.
			errs = append(errs, field.Invalid(ip.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case paths[m.MountPath]:
			errs = append(errs, field.Invalid(ip.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[m.MountPath] = true
		if m.SubPath != "" {
			if path.IsAbs(m.SubPath) {
				errs = append(errs, field.Invalid(ip.Child("subPath"), m.SubPath, "must be a relative path"))
			} else if hasDotDot(m.SubPath) {
				errs = append(errs, field.Invalid(ip.Child("subPath"), m.SubPath, "must not contain '..'"))
			}
			if m.SubPathExpr != "" {
				errs = append(errs, field.Invalid(ip.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
		}
		if m.MountPropagation != nil {
			if !slices.Contains(propagationModes, *m.MountPropagation) {
				errs = append(errs, field.NotSupported(ip.Child("mountPropagation"), *m.MountPropagation, propagationModes))
			} else if *m.MountPropagation == corev1.MountPropagationBidirectional && !privileged {
				// As the API server: a Bidirectional mount lets the container mount onto the host.
				errs = append(errs, field.Forbidden(ip.Child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
			}
		}
		if m.RecursiveReadOnly != nil {
			if !slices.Contains(recursiveModes, *m.RecursiveReadOnly) {
				errs = append(errs, field.NotSupported(ip.Child("recursiveReadOnly"), *m.RecursiveReadOnly, recursiveModes))
			} else if *m.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled {
				if !m.ReadOnly {
					errs = append(errs, field.Forbidden(ip.Child("recursiveReadOnly"), "may only be specified when readOnly is true"))
				}
				if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
					errs = append(errs, field.Forbidden(ip.Child("recursiveReadOnly"), "may only be specified when mountPropagation is None or not specified"))
				}
			}
		}
	}
	return errs
}

// validateHostUsers refuses, as the API server does (validateHostUsers), the host namespaces
// and block devices that a pod in a user namespace of its own (hostUsers: false) cannot have.
// The field names are the API server's, HostPID and HostIPC included.
func validateHostUsers(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	if spec.HostUsers == nil || *spec.HostUsers {
		return nil
	}
	var errs field.ErrorList
	if spec.HostNetwork {
		errs = append(errs, field.Forbidden(p.Child("hostNetwork"), "when `hostUsers` is false"))
	}
	if spec.HostPID {
		errs = append(errs, field.Forbidden(p.Child("HostPID"), "when `hostUsers` is false"))
	}
	if spec.HostIPC {
		errs = append(errs, field.Forbidden(p.Child("HostIPC"), "when `hostUsers` is false"))
	}
	for i := range spec.InitContainers {
		if len(spec.InitContainers[i].VolumeDevices) > 0 {
			errs = append(errs, field.Forbidden(p.Child("initContainers").Index(i).Child("volumeDevices"), "when `hostUsers` is false"))
		}
	}
	for i := range spec.Containers {
		if len(spec.Containers[i].VolumeDevices) > 0 {
			errs = append(errs, field.Forbidden(p.Child("containers").Index(i).Child("volumeDevices"), "when `hostUsers` is false"))
		}
	}
	return errs
}
