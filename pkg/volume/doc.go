// Package volume makes a pod's volumes real on the host and turns a container's volumeMounts
// into OCI bind mounts, the way a kubelet's volume manager and makeMounts do.
//
// Every volume lives under the pod's directory, <state-dir>/pods/<uid>/volumes/<kind>/<name>,
// except hostPath volumes, which are the host path itself:
//
//   - emptyDir: a directory (mode 0777); medium Memory mounts a tmpfs there, with
//     size=<sizeLimit> when a limit is set.
//   - hostPath: the path, after the type check of its `type` (DirectoryOrCreate, Directory,
//     FileOrCreate, File, Socket, CharDevice, BlockDevice; "" checks nothing). Under a node
//     policy with allowedHostPaths (Config.AllowedHostPaths), the path is looked at, created
//     and mounted only below the allowed directory that admits it: symlinks in it are followed
//     only while they stay there (a pod may have planted them), and each container's mount is
//     a bind of what was opened, as for subPath. A path that leaves is refused with the field
//     path and the link in the message (FailedMount at Prepare, CreateContainerConfigError at
//     Mounts).
//   - configMap, secret, downwardAPI, projected: files written with the kubelet's atomic
//     writer layout. The files live in a timestamped directory `..2006_01_02_15_04_05.NNN`,
//     `..data` is a symlink to it, and every top-level name is a symlink into `..data`. An
//     update writes a new timestamped directory and renames a new `..data` over the old one,
//     so a reader sees either the old set of files or the new one, never a mix. A ConfigMap
//     is the one a manifest file defines in the pod's namespace (Config.Objects), else the
//     directory Config.ConfigMapDir/<name>, whose regular files are its keys; a Secret is
//     Config.Objects' or Config.SecretDir/<name> in the same way, used only when it is
//     root's alone (see Lookup, CheckSecretDir and ReadSecretFile). Secret and projected volumes are tmpfs
//     mounts when minipod runs as root, as on a kubelet, so that their content never reaches
//     the state directory's disk; their kind directories are readable by root only.
//
// The pod's fsGroup owns emptyDir, configMap, secret, downwardAPI and projected content, with
// the kubelet's permission masks: group rw (emptyDir) or group r (the read-only API data
// volumes) on files, and setgid plus group x on directories.
//
// A pod with hostUsers: false (Config.UserNS) sees its volumes as an ID-mapped mount would show
// them, though runc 1.1 cannot make one: what this package makes below the pod's directory
// (emptyDir directories, API data files and their links, subPath directories) is owned by the
// range's root, and the fsGroup is the range's gid of it. hostPath volumes are never changed.
//
// Only volumes that some container mounts are prepared, as on a kubelet: an unused volume
// whose ConfigMap is missing does not stop a pod.
//
// Errors are *Error values whose Reason is the one a kubelet reports for the same failure:
// ReasonFailedMount for anything Prepare and Refresh cannot do (the kubelet's FailedMount
// event; the pod's containers stay waiting in ContainerCreating), ReasonCreateContainerConfig
// for volumeMounts that Mounts cannot turn into mounts (bad subPath, subPathExpr with a
// missing variable), and ReasonCreateContainer for a propagation the host mount cannot give
// (what containerd's CRI plugin refuses). Messages name the volume and never contain the
// content of a Secret.
package volume

import "fmt"

// Reasons carried by *Error.
const (
	// ReasonFailedMount is a volume that cannot be set up: a missing ConfigMap, Secret or key
	// that is not optional, a failed hostPath type check, an unsupported volume type.
	ReasonFailedMount = "FailedMount"
	// ReasonCreateContainerConfig is a volumeMount that cannot be made for a container:
	// a subPath that escapes its volume, a subPathExpr whose variable has no value.
	ReasonCreateContainerConfig = "CreateContainerConfigError"
	// ReasonCreateContainer is a mount the runtime would refuse: HostToContainer or
	// Bidirectional propagation from a host mount that is not shared.
	ReasonCreateContainer = "CreateContainerError"
	// ReasonPolicyViolation is a device node the node policy's allowedDevices does not admit,
	// found on what a hostPath volume really mounts.
	ReasonPolicyViolation = "PolicyViolation"
)

// Error is a volume problem with the reason a kubelet would report for it.
type Error struct {
	Reason  string
	Message string
	Err     error // the underlying error, if any
}

// Error returns the message; the reason travels separately.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func failedMount(err error, format string, args ...any) *Error {
	return &Error{Reason: ReasonFailedMount, Message: fmt.Sprintf(format, args...), Err: err}
}

func configError(err error, format string, args ...any) *Error {
	return &Error{Reason: ReasonCreateContainerConfig, Message: fmt.Sprintf(format, args...), Err: err}
}
