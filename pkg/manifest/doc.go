// Package manifest turns the bytes of one manifest file into the pods, ConfigMaps and Secrets
// that minipod can use, or into an error that says exactly what is wrong with the file.
//
// It does what the API server and the kubelet's file source do for a static pod, in the same
// order: decode each v1 Pod, ConfigMap and Secret of the file (YAML documents separated by
// `---`, or JSON, each an object or a v1 List of them, as `kubectl apply -f` reads a file;
// case-sensitive field names as in Kubernetes), compute the stable content hash that becomes
// the pod UID, apply the v1 defaults (a Secret's stringData merged into its data), and validate
// the result, naming every problem by its field path (`spec.containers[0].image: Required
// value`). Nothing here touches the file system or the runtime, so the daemon, minipodctl and
// tests can all share it.
package manifest

import "fmt"

// ReasonInvalid is the status.reason for files that cannot be used.
const ReasonInvalid = "InvalidManifest"

// MaxFileSize is the largest manifest minipod reads. Real pod manifests are a few KiB; the limit
// keeps a stray log file or image in the directory from costing memory and CPU on every re-list.
const MaxFileSize = 1 << 20

// Error is a manifest that cannot be used. Message names the field path, e.g.
// `spec.containers[0].image: Required value`.
type Error struct {
	Reason  string // ReasonInvalid
	Message string
	// Kind, Namespace and Name are those of the object the problem is in, when they could be
	// read; "" otherwise (PeekName reads them from a file of one object).
	Kind, Namespace, Name string
}

// Error returns the message alone: the reason travels separately in status.reason.
func (e *Error) Error() string { return e.Message }

func invalidf(format string, args ...any) *Error {
	return &Error{Reason: ReasonInvalid, Message: fmt.Sprintf(format, args...)}
}

// CheckSize refuses files larger than MaxFileSize. The caller checks the size from stat before
// reading so that a huge file is never read at all.
func CheckSize(n int64) error {
	if n > MaxFileSize {
		return invalidf("file is too large: %d bytes, the limit is %d bytes (1 MiB)", n, MaxFileSize)
	}
	return nil
}
