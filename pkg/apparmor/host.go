package apparmor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Host is a node's AppArmor, as the kubelet and containerd read it.
type Host struct {
	// Enabled says that the kernel enforces AppArmor: /sys/kernel/security/apparmor exists and
	// /sys/module/apparmor/parameters/enabled says Y (runc's apparmor.IsEnabled, which the
	// kubelet's admission uses).
	Enabled bool
	// Supported says that the runtime applies profiles: Enabled, /sbin/apparmor_parser there
	// to load the default profile, and not itself in a container ($container unset). It is
	// containerd's apparmor.HostSupports: where the kernel has AppArmor but the parser is
	// missing, containerd's CRI runs containers unconfined and fails those that ask for a
	// profile.
	Supported bool
	// Loaded reports whether the kernel has a profile of that name loaded; nil: none is.
	Loaded func(name string) (bool, error)
}

// Spec is the AppArmor part of a container's OCI spec.
type Spec struct {
	// Profile is the process's profile; "" runs it unconfined.
	Profile string
	// Default says that Profile is the runtime's DefaultProfile, which the runtime loads when
	// the kernel lacks it (containerd's apparmor.WithDefaultProfile).
	Default bool
}

// ErrNotSupported fails a container that asks for a profile where the runtime cannot apply
// one (containerd's words).
var ErrNotSupported = errors.New("apparmor is not supported")

// Spec decides a container's profile when the runtime creates it, as containerd's CRI does
// (GenerateApparmorSpecOpts). Where AppArmor is not Supported a container runs unconfined,
// and one that asks for a profile other than Unconfined fails with ErrNotSupported. Where it
// is, no request at all and RuntimeDefault mean DefaultProfile (none for a privileged
// container), Unconfined none, and Localhost the named profile, which must be loaded: the
// error then says so, and the container can be created once it is.
func (h Host) Spec(r Request, privileged bool) (Spec, error) {
	if !h.Supported {
		if r.Type != "" && r.Type != corev1.AppArmorProfileTypeUnconfined {
			return Spec{}, ErrNotSupported
		}
		return Spec{}, nil
	}
	switch r.Type {
	case "", corev1.AppArmorProfileTypeRuntimeDefault:
		if privileged {
			return Spec{}, nil
		}
		return Spec{Profile: DefaultProfile, Default: true}, nil
	case corev1.AppArmorProfileTypeUnconfined:
		return Spec{}, nil
	case corev1.AppArmorProfileTypeLocalhost:
		// containerd trims the prefix of the annotations' syntax too.
		name := strings.TrimPrefix(r.Localhost, corev1.DeprecatedAppArmorBetaProfileNamePrefix)
		if strings.TrimSpace(name) == "" {
			return Spec{}, errors.New("apparmor profile name is empty")
		}
		loaded := false
		if h.Loaded != nil {
			var err error
			if loaded, err = h.Loaded(name); err != nil {
				return Spec{}, fmt.Errorf("read loaded apparmor profiles: %w", err)
			}
		}
		if !loaded {
			return Spec{}, fmt.Errorf("apparmor profile not found %s", name)
		}
		return Spec{Profile: name}, nil
	}
	return Spec{}, fmt.Errorf("unknown apparmor profile type %q", r.Type)
}

const (
	enabledFile  = "sys/module/apparmor/parameters/enabled"
	securityDir  = "sys/kernel/security/apparmor"
	profilesFile = "sys/kernel/security/apparmor/profiles"
	parserFile   = "sbin/apparmor_parser"
)

// Detect reads the AppArmor state of the host whose root directory is root ("/" for this
// one). Loaded reads root's list of loaded profiles at each call.
func Detect(root string) Host {
	h := Host{Loaded: func(name string) (bool, error) { return loadedIn(filepath.Join(root, profilesFile), name) }}
	if _, err := os.Stat(filepath.Join(root, securityDir)); err != nil {
		return h
	}
	b, err := os.ReadFile(filepath.Join(root, enabledFile))
	h.Enabled = err == nil && len(b) > 1 && b[0] == 'Y'
	if _, err := os.Stat(filepath.Join(root, parserFile)); err == nil {
		h.Supported = h.Enabled && os.Getenv("container") == ""
	}
	return h
}

// System is this host's AppArmor, detected at the first call: the kubelet and containerd too
// read it once, at their start. It is safe for concurrent use.
var System = sync.OnceValue(func() Host { return Detect("/") })

// loadedIn reports whether the profiles file (lines of "name (mode)") lists name.
func loadedIn(path, name string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return listed(f, name)
}

func listed(r io.Reader, name string) (bool, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+" (") {
			return true, nil
		}
	}
	return false, sc.Err()
}
