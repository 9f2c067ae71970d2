package runtime

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	ctrdapparmor "github.com/containerd/containerd/v2/contrib/apparmor"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/minipod/minipod/pkg/apparmor"
	"github.com/minipod/minipod/pkg/userns"
)

// Security is a container's security settings, already resolved from the pod's and the
// container's securityContext.
type Security struct {
	UID, GID           *int64 // nil: the image's user
	SupplementalGroups []int64
	// StrictGroups is supplementalGroupsPolicy Strict: the process gets its primary group and
	// SupplementalGroups only. Otherwise (Merge, the default) the groups the image's
	// /etc/group gives its user come too, as under containerd's CRI.
	StrictGroups    bool
	Privileged      bool
	CapAdd, CapDrop []string // "ALL" allowed; names with or without CAP_
	ReadOnlyRootfs  bool
	NoNewPrivileges bool
	Sysctls         map[string]string
	// Seccomp is "" or "Unconfined" (none, the Kubernetes default), "RuntimeDefault", or the
	// path of a Localhost profile.
	Seccomp string
	// AppArmor is what the container asks of AppArmor (apparmor.RequestFor), decided against
	// the host when the container is created, as containerd's CRI decides it; nil asks for
	// nothing at all, not even the runtime's default profile (the pause container, which the
	// CRI never confines either).
	AppArmor *apparmor.Request
}

// Namespaces says which host or pod namespaces a container shares.
type Namespaces struct {
	HostNetwork, HostPID, HostIPC bool
	// SharePID joins the pause process's PID namespace (shareProcessNamespace).
	SharePID bool
}

// securityOpts are the spec options of sec; imageUser is the image's (or the container's
// configured) user, "name" or "uid[:gid]", whose groups the image's /etc/group may list.
func securityOpts(sec Security, imageUser string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if sec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	}
	if sec.UID != nil || sec.GID != nil {
		opts = append(opts, withIDs(sec.UID, sec.GID))
	}
	// The groups the image gives the user are looked up as containerd's CRI looks them up: by
	// the uid the container runs as, else the image's user; nobody to look up, none to add.
	lookup := imageUser
	if sec.UID != nil {
		lookup = strconv.FormatInt(*sec.UID, 10)
	}
	lookup, _, _ = strings.Cut(lookup, ":")
	imageGroups := lookup != "" && !sec.StrictGroups
	if imageGroups {
		opts = append(opts, oci.WithAdditionalGIDs(lookup))
	}
	opts = append(opts, withGroups(sec.SupplementalGroups, imageGroups))
	if len(sec.CapAdd) > 0 || len(sec.CapDrop) > 0 {
		opts = append(opts, withCaps(sec.CapAdd, sec.CapDrop))
	}
	if sec.ReadOnlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if len(sec.Sysctls) > 0 {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			for k, v := range sec.Sysctls {
				s.Linux.Sysctl[k] = v
			}
			return nil
		})
	}
	// The OCI default sets no_new_privs; Kubernetes leaves it off unless
	// allowPrivilegeEscalation is false.
	opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.NoNewPrivileges = sec.NoNewPrivileges && !sec.Privileged
		return nil
	})
	switch {
	case sec.Privileged || sec.Seccomp == "" || sec.Seccomp == "Unconfined":
	case sec.Seccomp == "RuntimeDefault":
		opts = append(opts, seccomp.WithDefaultProfile())
	default:
		opts = append(opts, withSeccompFile(sec.Seccomp))
	}
	if sec.AppArmor != nil {
		opts = append(opts, withAppArmor(*sec.AppArmor, sec.Privileged))
	}
	return opts
}

// The host's AppArmor and the loading of the default profile, replaced by tests.
var (
	appArmorHost       = apparmor.System
	loadDefaultProfile = ctrdapparmor.LoadDefaultProfile
	loadDefaultMu      sync.Mutex // one apparmor_parser at a time
)

// withAppArmor sets the container's AppArmor profile (apparmor.Host.Spec) when its spec is
// made, so that a Localhost profile loaded after a failed attempt is found by the next one.
// The runtime's default profile is loaded first when the kernel lacks it, as containerd's CRI
// loads it (its apparmor_parser, from containerd's template).
func withAppArmor(r apparmor.Request, privileged bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		spec, err := appArmorHost().Spec(r, privileged)
		if err != nil {
			return fmt.Errorf("set apparmor profile: %w", err)
		}
		if spec.Default {
			loadDefaultMu.Lock()
			err := loadDefaultProfile(spec.Profile)
			loadDefaultMu.Unlock()
			if err != nil {
				return fmt.Errorf("load apparmor profile %s: %w", spec.Profile, err)
			}
		}
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.ApparmorProfile = spec.Profile
		return nil
	}
}

func withIDs(uid, gid *int64) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		if uid != nil {
			// WithUserID also takes the user's primary group from the image's /etc/passwd.
			if err := oci.WithUserID(uint32(*uid))(ctx, client, c, s); err != nil {
				return err
			}
		}
		if gid != nil {
			s.Process.User.GID = uint32(*gid)
		}
		return nil
	}
}

// withGroups sets the process's groups as containerd's CRI does for a pod's securityContext:
// its primary group, the image's groups for its user when imageGroups (set by
// oci.WithAdditionalGIDs before), then the supplemental ones (fsGroup among them). Nothing
// else: a group the default spec carries (root's 0) would give a non-root user root's group
// files.
func withGroups(extra []int64, imageGroups bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		gids := []uint32{s.Process.User.GID}
		add := func(g uint32) {
			if !slices.Contains(gids, g) {
				gids = append(gids, g)
			}
		}
		if imageGroups {
			for _, g := range s.Process.User.AdditionalGids {
				add(g)
			}
		}
		for _, g := range extra {
			add(uint32(g))
		}
		s.Process.User.AdditionalGids = gids
		return nil
	}
}

// ProcessUser is the identity a container's process runs with: what the kubelet reports as
// containerStatuses[].user.linux.
type ProcessUser struct {
	UID, GID int64
	Groups   []int64 // the primary group first, as in the spec
}

// String is the form of LabelUser: "uid:gid:g1,g2".
func (u ProcessUser) String() string {
	groups := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = strconv.FormatInt(g, 10)
	}
	return fmt.Sprintf("%d:%d:%s", u.UID, u.GID, strings.Join(groups, ","))
}

// ParseProcessUser reads a LabelUser value; ok is false for anything else.
func ParseProcessUser(v string) (u ProcessUser, ok bool) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return ProcessUser{}, false
	}
	var err error
	if u.UID, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
		return ProcessUser{}, false
	}
	if u.GID, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return ProcessUser{}, false
	}
	if parts[2] != "" {
		for _, f := range strings.Split(parts[2], ",") {
			g, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return ProcessUser{}, false
			}
			u.Groups = append(u.Groups, g)
		}
	}
	return u, true
}

func processUserOf(u specs.User) ProcessUser {
	pu := ProcessUser{UID: int64(u.UID), GID: int64(u.GID)}
	for _, g := range u.AdditionalGids {
		pu.Groups = append(pu.Groups, int64(g))
	}
	return pu
}

func normCap(c string) string {
	c = strings.ToUpper(c)
	if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// withCaps applies Kubernetes' capabilities rule to the default set: drop first, then add;
// "ALL" stands for every capability the kernel knows.
func withCaps(add, drop []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		set := map[string]bool{}
		if s.Process.Capabilities != nil {
			for _, c := range s.Process.Capabilities.Bounding {
				set[c] = true
			}
		}
		for _, c := range drop {
			if c = normCap(c); c == "CAP_ALL" || c == "ALL" {
				set = map[string]bool{}
			} else {
				delete(set, c)
			}
		}
		for _, c := range add {
			if c = normCap(c); c == "CAP_ALL" || c == "ALL" {
				for _, k := range cap.Known() {
					set[k] = true
				}
			} else {
				set[c] = true
			}
		}
		var caps []string
		for c := range set {
			caps = append(caps, c)
		}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		return nil
	}
}

func withSeccompFile(path string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("seccomp profile: %w", err)
		}
		return seccomp.WithProfile(string(data))(context.Background(), nil, nil, s)
	}
}

func namespaceOpts(cfg ContainerConfig) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if cfg.Namespaces.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostResolvconf)
		// The node's /etc/hosts, unless the pod brings its own (the kubelet's host-network
		// file: the node's with the pod's hostAliases); a later mount would hide it.
		if !slices.ContainsFunc(cfg.Mounts, func(m specs.Mount) bool { return m.Destination == "/etc/hosts" }) {
			opts = append(opts, oci.WithHostHostsFile)
		}
	} else {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: cfg.NetNS}))
	}
	if cfg.Namespaces.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	} else if cfg.Namespaces.SharePID && cfg.JoinPID != 0 {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", cfg.JoinPID)}))
	}
	if cfg.Namespaces.HostIPC {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	return opts
}

// withUserNS puts the container in a user namespace of the range: a new one, or the one of
// process joinPID. runc wants the mapping in both cases.
func withUserNS(ns userns.Range, joinPID uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: ns.HostID, Size: ns.Size}}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
		user := specs.LinuxNamespace{Type: specs.UserNamespace}
		if joinPID != 0 {
			user.Path = fmt.Sprintf("/proc/%d/ns/user", joinPID)
		}
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
		s.Linux.Namespaces = append(s.Linux.Namespaces, user)
		return nil
	}
}
