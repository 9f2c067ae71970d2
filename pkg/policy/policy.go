// Package policy is a node's admission policy: what the pods in its manifest directory may ask
// for. Whoever can write a manifest can otherwise run privileged containers with the host's
// network and any host directory; a node that runs manifests from several people (or from a
// config-management tool with a wide reach) can narrow that down.
//
// The zero Policy allows what a kubelet allows static pods with its defaults
// (--allow-privileged, no --allowed-unsafe-sysctls): everything but sysctls outside the
// kubelet's safe set. A pod that breaks the policy is not run; minipodctl status shows it with
// the reason PolicyViolation and the field paths it broke, like an API server's admission
// errors.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minipod/minipod/pkg/manifest"
)

// Reason is the status reason of a pod the policy refuses.
const Reason = "PolicyViolation"

// Policy says what pods may ask for. A nil field allows everything of its kind, except
// AllowedUnsafeSysctls: nil allows only the safe sysctls.
type Policy struct {
	// AllowPrivileged false refuses privileged containers.
	AllowPrivileged *bool `json:"allowPrivileged,omitempty" yaml:"allowPrivileged"`
	// AllowHostNetwork, AllowHostPID and AllowHostIPC false refuse pods that share the host's
	// network, process or IPC namespace.
	AllowHostNetwork *bool `json:"allowHostNetwork,omitempty" yaml:"allowHostNetwork"`
	AllowHostPID     *bool `json:"allowHostPID,omitempty" yaml:"allowHostPID"`
	AllowHostIPC     *bool `json:"allowHostIPC,omitempty" yaml:"allowHostIPC"`
	// AllowedHostPaths, when set, is the list of directories hostPath volumes may name: the
	// path itself or anything below one of them. An empty list allows no hostPath at all.
	AllowedHostPaths []string `json:"allowedHostPaths,omitempty" yaml:"allowedHostPaths"`
	// AllowedCapabilities, when set, is the list of capabilities containers may add
	// (securityContext.capabilities.add), with or without the CAP_ prefix. An empty list
	// allows adding none.
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty" yaml:"allowedCapabilities"`
	// AllowPrivilegeEscalation false requires every container to set
	// securityContext.allowPrivilegeEscalation: false, as the Pod Security Standards'
	// restricted profile does. Unset is refused too: the runtime then lets setuid programs gain
	// privileges, and minipod does not rewrite manifests the way an admission webhook would.
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation,omitempty" yaml:"allowPrivilegeEscalation"`
	// AllowedHostPorts, when set, is the list of host ports containers may declare
	// (ports[].hostPort, which portmap forwards from every address of the node to the pod):
	// single ports ("443") and inclusive ranges ("8000-8999"). An empty list allows no
	// hostPort at all. It does not govern hostNetwork pods' own listening sockets, which
	// allowHostNetwork does.
	AllowedHostPorts []string `json:"allowedHostPorts,omitempty" yaml:"allowedHostPorts"`
	// AllowedUnsafeSysctls is the list of sysctls (securityContext.sysctls) pods may set beyond
	// the kubelet's safe set, as the kubelet's --allowed-unsafe-sysctls: exact names, or
	// prefixes ending in '*' (kernel.msg*, net.core.*). Only namespaced sysctls can be listed.
	// The safe set (SafeSysctls) is always allowed; nil or empty allows nothing more.
	AllowedUnsafeSysctls []string `json:"allowedUnsafeSysctls,omitempty" yaml:"allowedUnsafeSysctls"`
	// AllowedDevices, when set, is the list of device nodes a hostPath volume may be: glob
	// patterns of absolute paths (/dev/ttyUSB*, /dev/gpiochip0), matched against the device's
	// path as really mounted (symbolic links followed). An empty list allows no device; unset,
	// allowedHostPaths alone decides. The container that mounts the device gets access to it,
	// and to it alone, without being privileged.
	AllowedDevices []string `json:"allowedDevices,omitempty" yaml:"allowedDevices"`
}

// keys are the policy's keys as written in the configuration file.
var keys = []string{"allowPrivileged", "allowHostNetwork", "allowHostPID", "allowHostIPC", "allowedHostPaths", "allowedCapabilities",
	"allowPrivilegeEscalation", "allowedHostPorts", "allowedUnsafeSysctls", "allowedDevices"}

// Keys lists the policy's keys as written in the configuration file.
func Keys() []string { return append([]string(nil), keys...) }

// Validate checks the policy itself: host path prefixes must be absolute and clean, host
// ports ports or ranges of them, and unsafe sysctls names or prefixes of namespaced sysctls.
func (p *Policy) Validate() error {
	var errs []error
	for _, hp := range p.AllowedHostPaths {
		if !filepath.IsAbs(hp) || filepath.Clean(hp) != hp {
			errs = append(errs, fmt.Errorf("allowedHostPaths: %q must be an absolute, clean path (like %q)", hp, filepath.Clean("/"+hp)))
		}
	}
	for _, c := range p.AllowedCapabilities {
		if c == "" || strings.ContainsAny(c, " \t") {
			errs = append(errs, fmt.Errorf("allowedCapabilities: %q is not a capability name", c))
		}
	}
	for _, r := range p.AllowedHostPorts {
		if _, err := parsePortRange(r); err != nil {
			errs = append(errs, fmt.Errorf("allowedHostPorts: %w", err))
		}
	}
	for _, s := range p.AllowedUnsafeSysctls {
		if err := checkSysctlPattern(s); err != nil {
			errs = append(errs, fmt.Errorf("allowedUnsafeSysctls: %w", err))
		}
	}
	for _, d := range p.AllowedDevices {
		if _, err := filepath.Match(d, "/"); err != nil || !filepath.IsAbs(d) || filepath.Clean(d) != d {
			errs = append(errs, fmt.Errorf("allowedDevices: %q must be an absolute, clean path or glob pattern (like /dev/ttyUSB*)", d))
		}
	}
	return errors.Join(errs...)
}

// Unset reports whether no key of the policy is set (the configuration file has no policy,
// or an empty one). Such a policy still refuses sysctls outside the kubelet's safe set, as a
// kubelet does without --allowed-unsafe-sysctls: call Admit for every pod.
func (p *Policy) Unset() bool {
	return p.AllowPrivileged == nil && p.AllowHostNetwork == nil && p.AllowHostPID == nil &&
		p.AllowHostIPC == nil && p.AllowedHostPaths == nil && p.AllowedCapabilities == nil &&
		p.AllowPrivilegeEscalation == nil && p.AllowedHostPorts == nil && p.AllowedUnsafeSysctls == nil &&
		p.AllowedDevices == nil
}

// CheckDevice refuses a hostPath volume that is the device node at path (as really mounted)
// when allowed, the policy's allowedDevices, is set and none of its patterns matches; unset
// (nil), allowedHostPaths alone decides.
func CheckDevice(allowed []string, path string) error {
	if allowed == nil {
		return nil
	}
	for _, pat := range allowed {
		if ok, _ := filepath.Match(pat, path); ok {
			return nil
		}
	}
	return fmt.Errorf("device %s is not allowed by this node's policy (allowedDevices: %s)", path, list(allowed))
}

// MarshalJSON writes the policy for --print-config, the log and the flag. It keeps an empty
// list: allowedHostPaths: [] allows no host path at all while a missing key allows any, and
// plain omitempty would print the strictest setting as the most permissive one. A pointer to
// a slice is omitted only when nil, which is the distinction wanted.
func (p Policy) MarshalJSON() ([]byte, error) {
	orNil := func(s []string) *[]string {
		if s == nil {
			return nil
		}
		return &s
	}
	return json.Marshal(struct {
		AllowPrivileged          *bool     `json:"allowPrivileged,omitempty"`
		AllowHostNetwork         *bool     `json:"allowHostNetwork,omitempty"`
		AllowHostPID             *bool     `json:"allowHostPID,omitempty"`
		AllowHostIPC             *bool     `json:"allowHostIPC,omitempty"`
		AllowedHostPaths         *[]string `json:"allowedHostPaths,omitempty"`
		AllowedCapabilities      *[]string `json:"allowedCapabilities,omitempty"`
		AllowPrivilegeEscalation *bool     `json:"allowPrivilegeEscalation,omitempty"`
		AllowedHostPorts         *[]string `json:"allowedHostPorts,omitempty"`
		AllowedUnsafeSysctls     *[]string `json:"allowedUnsafeSysctls,omitempty"`
		AllowedDevices           *[]string `json:"allowedDevices,omitempty"`
	}{p.AllowPrivileged, p.AllowHostNetwork, p.AllowHostPID, p.AllowHostIPC,
		orNil(p.AllowedHostPaths), orNil(p.AllowedCapabilities), p.AllowPrivilegeEscalation,
		orNil(p.AllowedHostPorts), orNil(p.AllowedUnsafeSysctls), orNil(p.AllowedDevices)})
}

// Check returns every way pod breaks the policy, with field paths; none means it is admitted.
// pod must be defaulted and valid (manifest.Load). The safe sysctls are those of this
// machine's kernel (SafeSysctls).
func (p *Policy) Check(pod *corev1.Pod) field.ErrorList {
	return p.check(pod, nodeSafeSysctls())
}

func (p *Policy) check(pod *corev1.Pod, safeSysctls []string) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	forbid := func(allowed *bool, on bool, path *field.Path, what string) {
		if on && allowed != nil && !*allowed {
			errs = append(errs, field.Forbidden(path, what+" is not allowed by this node's policy"))
		}
	}
	forbid(p.AllowHostNetwork, pod.Spec.HostNetwork, spec.Child("hostNetwork"), "the host's network namespace")
	forbid(p.AllowHostPID, pod.Spec.HostPID, spec.Child("hostPID"), "the host's PID namespace")
	forbid(p.AllowHostIPC, pod.Spec.HostIPC, spec.Child("hostIPC"), "the host's IPC namespace")

	// Sysctls: the safe set, and what the node allows besides. A kubelet refuses the pod at
	// admission with SysctlForbidden; so does ReasonOf when nothing else is broken.
	if psc := pod.Spec.SecurityContext; psc != nil {
		for i, s := range psc.Sysctls {
			if sysctlAllowed(safeSysctls, p.AllowedUnsafeSysctls, manifest.NormalizeSysctl(s.Name)) {
				continue
			}
			errs = append(errs, field.Forbidden(spec.Child("securityContext", "sysctls").Index(i).Child("name"),
				fmt.Sprintf("unsafe sysctl %s is not allowed by this node's policy (allowedUnsafeSysctls: %s)",
					s.Name, list(p.AllowedUnsafeSysctls))))
		}
	}

	check := func(sc *corev1.SecurityContext, ports []corev1.ContainerPort, path *field.Path) {
		if p.AllowedHostPorts != nil {
			for j, port := range ports {
				if port.HostPort != 0 && !portAllowed(p.AllowedHostPorts, port.HostPort) {
					errs = append(errs, field.Forbidden(path.Child("ports").Index(j).Child("hostPort"),
						fmt.Sprintf("host port %d is not allowed by this node's policy (allowed: %s)", port.HostPort, list(p.AllowedHostPorts))))
				}
			}
		}
		scPath := path.Child("securityContext")
		if p.AllowPrivilegeEscalation != nil && !*p.AllowPrivilegeEscalation &&
			(sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation) {
			errs = append(errs, field.Forbidden(scPath.Child("allowPrivilegeEscalation"),
				"must be set to false by this node's policy"))
		}
		if sc == nil {
			return
		}
		forbid(p.AllowPrivileged, sc.Privileged != nil && *sc.Privileged, scPath.Child("privileged"), "a privileged container")
		if p.AllowedCapabilities == nil || sc.Capabilities == nil {
			return
		}
		for j, c := range sc.Capabilities.Add {
			if !capAllowed(p.AllowedCapabilities, string(c)) {
				errs = append(errs, field.Forbidden(scPath.Child("capabilities", "add").Index(j),
					fmt.Sprintf("capability %s is not allowed by this node's policy (allowed: %s)", c, list(p.AllowedCapabilities))))
			}
		}
	}
	// Init containers include sidecars (restartPolicy: Always). Ephemeral containers cannot be
	// in a manifest (validation refuses them), but a pod that has them is checked all the same,
	// so that Check never depends on that.
	for i, c := range pod.Spec.InitContainers {
		check(c.SecurityContext, c.Ports, spec.Child("initContainers").Index(i))
	}
	for i, c := range pod.Spec.Containers {
		check(c.SecurityContext, c.Ports, spec.Child("containers").Index(i))
	}
	for i, c := range pod.Spec.EphemeralContainers {
		check(c.SecurityContext, c.Ports, spec.Child("ephemeralContainers").Index(i))
	}

	if p.AllowedHostPaths != nil {
		for i, v := range pod.Spec.Volumes {
			if v.HostPath == nil {
				continue
			}
			if !pathAllowed(p.AllowedHostPaths, v.HostPath.Path) {
				errs = append(errs, field.Forbidden(spec.Child("volumes").Index(i).Child("hostPath", "path"),
					fmt.Sprintf("host path %s is not under a directory this node's policy allows (%s)", v.HostPath.Path, list(p.AllowedHostPaths))))
			}
		}
	}
	// A hostPath typed as a device is checked by its name here; any hostPath that turns out
	// to be a device is checked again, on what is mounted, when its container is made.
	if p.AllowedDevices != nil {
		for i, v := range pod.Spec.Volumes {
			if v.HostPath == nil || v.HostPath.Type == nil ||
				(*v.HostPath.Type != corev1.HostPathCharDev && *v.HostPath.Type != corev1.HostPathBlockDev) {
				continue
			}
			if err := CheckDevice(p.AllowedDevices, filepath.Clean(v.HostPath.Path)); err != nil {
				errs = append(errs, field.Forbidden(spec.Child("volumes").Index(i).Child("hostPath", "path"), err.Error()))
			}
		}
	}
	return errs
}

// pathAllowed reports whether path is one of the prefixes or below one, on whole path
// components: /data allows /data and /data/x, not /database. The path is cleaned first, so
// /data/../etc is /etc. Symbolic links on the host are not followed: a prefix should name a
// directory that only root can write, or a link inside it could point anywhere.
func pathAllowed(prefixes []string, path string) bool {
	path = filepath.Clean(path)
	for _, pre := range prefixes {
		if pre == "/" || path == pre || strings.HasPrefix(path, pre+"/") {
			return true
		}
	}
	return false
}

func capAllowed(allowed []string, c string) bool {
	norm := func(s string) string { return strings.TrimPrefix(strings.ToUpper(s), "CAP_") }
	for _, a := range allowed {
		if norm(a) == "ALL" || norm(a) == norm(c) {
			return true
		}
	}
	return false
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Error is a policy refusal; its message lists the broken rules with their field paths.
type Error struct{ Errs field.ErrorList }

// ReasonOf is the status reason of a pod Admit refused with err: SysctlForbidden, as on a
// kubelet, when sysctls are all it broke; PolicyViolation otherwise.
func ReasonOf(err error) string {
	var perr *Error
	if errors.As(err, &perr) {
		return perr.reason()
	}
	return Reason
}

func (e *Error) reason() string {
	for _, err := range e.Errs {
		if !strings.HasPrefix(err.Field, "spec.securityContext.sysctls[") {
			return Reason
		}
	}
	return SysctlForbiddenReason
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Admit returns an *Error when pod breaks the policy, else nil.
func (p *Policy) Admit(pod *corev1.Pod) error {
	if errs := p.Check(pod); len(errs) > 0 {
		return &Error{Errs: errs}
	}
	return nil
}

// UnmarshalYAML reads the policy strictly from the configuration file: an unknown key (a
// misspelt rule would silently allow what it meant to forbid) is an error.
func (p *Policy) UnmarshalYAML(unmarshal func(any) error) error {
	var m map[string]any
	if err := unmarshal(&m); err != nil {
		return err
	}
	var unknown []string
	for k := range m {
		if !contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown policy key %s (known: %s)", strings.Join(unknown, ", "), strings.Join(keys, ", "))
	}
	type plain Policy
	var v plain
	if err := unmarshal(&v); err != nil {
		return err
	}
	*p = Policy(v)
	return p.Validate()
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// String and Set make a Policy a command-line flag that takes the policy as JSON
// (--policy '{"allowPrivileged":false}'), so that, like every other setting, it can come from
// the file or the command line.
func (p *Policy) String() string {
	if p == nil || p.Unset() {
		return ""
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func (p *Policy) Set(s string) error {
	var v Policy
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("policy: %w (known keys: %s)", err, strings.Join(keys, ", "))
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*p = v
	return nil
}
