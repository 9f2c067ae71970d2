package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/userns"
)

// Config says where a pod's volumes live and where ConfigMaps and Secrets come from.
type Config struct {
	PodDir       string // <state-dir>/pods/<uid>: volumes live under PodDir/volumes/<kind>/<name>
	ConfigMapDir string // e.g. /etc/minipod/configmaps: NAME/KEY files are a ConfigMap's data
	SecretDir    string // e.g. /etc/minipod/secrets (root-only); NAME/KEY files
	// InsecureSecretPerms reads ConfigMaps and Secrets whatever their owner and mode (see Local).
	InsecureSecretPerms bool
	// Objects are the ConfigMaps and Secrets of the manifest files, read before the
	// directories (see Lookup); nil when there are none.
	Objects Objects
	// AllowedHostPaths is the node policy's allowedHostPaths (clean absolute paths; nil: any
	// host path, as on a kubelet). When set, a hostPath volume is looked at, created and
	// mounted only below the outermost of them that admits its path, following a symlink only
	// while it stays there, so that a link a pod planted cannot take it elsewhere; its mounts
	// are then binds of what was opened, as subPath's are (beneath.go).
	AllowedHostPaths []string
	// CheckDevice refuses a hostPath volume that is the device node at a path (as really
	// mounted, links followed), saying why; nil allows every device. A refused one is a
	// PolicyViolation naming the volume's field.
	CheckDevice func(path string) error
	// UserNS is the pod's user namespace range (hostUsers: false), nil for none. runc 1.1 has
	// no ID-mapped mounts, so what the daemon makes is moved into the range instead: the
	// emptyDir directories and the files of API data volumes belong to root inside, and the
	// fsGroup is the range's gid of it. hostPath volumes stay as they are (the host's IDs,
	// which the namespace shows as the overflow ID): nothing outside the pod's directory is
	// ever chowned.
	UserNS *userns.Range
}

// Volume kinds: the directory names under PodDir/volumes.
const (
	kindEmptyDir    = "empty-dir"
	kindHostPath    = "host-path" // never a directory under PodDir
	kindConfigMap   = "configmap"
	kindSecret      = "secret"
	kindDownwardAPI = "downward-api"
	kindProjected   = "projected"
)

// VolumesDir and SubpathsDir are the directories under a pod's directory that this package
// owns: the volumes, and the bind mounts that subPath volumeMounts use.
const (
	VolumesDir  = "volumes"
	SubpathsDir = "volume-subpaths"
)

// Prepared is a pod's volumes made real on the host.
type Prepared struct {
	// Paths maps a volume name to its host path: the volume directory, or the hostPath path.
	Paths map[string]string

	mu   sync.Mutex
	cfg  Config
	pod  *corev1.Pod
	vols map[string]*prepared
}

type prepared struct {
	vol  corev1.Volume
	kind string
	path string
}

// allowed is the allowedHostPaths that confine hostPath volumes, or nil when they are not
// confined: no policy, or one that allows / (every path, and no symlink can leave it).
func (p *Prepared) allowed() []string {
	if p.cfg.AllowedHostPaths == nil || slices.Contains(p.cfg.AllowedHostPaths, "/") {
		return nil
	}
	return p.cfg.AllowedHostPaths
}

// fieldPath is the field path of the hostPath of the pod's volume name, for messages.
func (p *Prepared) fieldPath(name string) string {
	for i, v := range p.pod.Spec.Volumes {
		if v.Name == name {
			return fmt.Sprintf("spec.volumes[%d].hostPath.path", i)
		}
	}
	return "hostPath.path"
}

// apiData reports whether the volume holds API data (configMap, secret, downwardAPI,
// projected): always mounted read-only, and updated by Refresh.
func (v *prepared) apiData() bool {
	switch v.kind {
	case kindConfigMap, kindSecret, kindDownwardAPI, kindProjected:
		return true
	}
	return false
}

// usedVolumes is the set of volume names some container mounts.
func usedVolumes(pod *corev1.Pod) map[string]bool {
	used := map[string]bool{}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, m := range c.VolumeMounts {
				used[m.Name] = true
			}
			for _, d := range c.VolumeDevices {
				used[d.Name] = true
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		for _, m := range c.VolumeMounts {
			used[m.Name] = true
		}
	}
	return used
}

// group is the host gid that the pod's fsGroup owns its volumes with: the fsGroup, or its ID
// in the pod's user namespace range; nil without an fsGroup.
func (p *Prepared) group() *int64 {
	gid := fsGroup(p.pod)
	if gid == nil || p.cfg.UserNS == nil {
		return gid
	}
	h, ok := p.cfg.UserNS.ToHost(uint32(*gid))
	if !ok || *gid < 0 {
		return gid // outside the range: shown as the overflow gid, as an ID-mapped mount would
	}
	g := int64(h)
	return &g
}

func fsGroup(pod *corev1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		g := *sc.FSGroup
		return &g
	}
	return nil
}

// kindOf returns the kind of a volume, or the JSON name of its unsupported source.
func kindOf(vs *corev1.VolumeSource) (string, error) {
	switch {
	case vs.EmptyDir != nil:
		return kindEmptyDir, nil
	case vs.HostPath != nil:
		return kindHostPath, nil
	case vs.ConfigMap != nil:
		return kindConfigMap, nil
	case vs.Secret != nil:
		return kindSecret, nil
	case vs.DownwardAPI != nil:
		return kindDownwardAPI, nil
	case vs.Projected != nil:
		return kindProjected, nil
	}
	v := reflect.ValueOf(vs).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return "", fmt.Errorf("%s volumes are not supported", name)
		}
	}
	return "", errors.New("no volume source")
}

// kindDirMode: directories of volumes that may hold secrets are for root only.
func kindDirMode(kind string) os.FileMode {
	if kind == kindSecret || kind == kindProjected {
		return 0700
	}
	return 0750
}

// memoryBacked reports whether a kind lives on tmpfs, as the kubelet's wrapped emptyDir with
// medium Memory does for secret and projected volumes. Mounting needs root; the daemon is root,
// and unprivileged test runs get plain directories.
func memoryBacked(kind string) bool {
	return (kind == kindSecret || kind == kindProjected) && os.Geteuid() == 0
}

// Prepare creates every volume of the pod that a container mounts. It is idempotent: run again
// on volumes that exist (after a daemon restart), it checks and updates them. On error it
// undoes what this call made, and leaves what existed before alone.
func Prepare(cfg Config, pod *corev1.Pod, podIP string) (*Prepared, error) {
	if cfg.PodDir == "" || !filepath.IsAbs(cfg.PodDir) {
		return nil, failedMount(nil, "pod directory %q must be an absolute path", cfg.PodDir)
	}
	cfg.PodDir = filepath.Clean(cfg.PodDir)
	p := &Prepared{Paths: map[string]string{}, cfg: cfg, pod: pod.DeepCopy(), vols: map[string]*prepared{}}
	var undo []func()
	ok := false
	defer func() {
		if !ok {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	used := usedVolumes(pod)
	for _, v := range pod.Spec.Volumes {
		if !used[v.Name] {
			continue
		}
		kind, err := kindOf(&v.VolumeSource)
		if err != nil {
			return nil, failedMount(err, "volume %q: %v", v.Name, err)
		}
		pv := &prepared{vol: *v.DeepCopy(), kind: kind}
		u, err := p.setUp(pv, podIP)
		undo = append(undo, u...)
		if err != nil {
			return nil, err
		}
		p.vols[v.Name] = pv
		p.Paths[v.Name] = pv.path
	}
	ok = true
	return p, nil
}

// volumeDir creates PodDir/volumes/<kind>/<name> (the parents for root only) and returns it,
// with undo functions for what it created.
func (p *Prepared) volumeDir(kind, name string, perm os.FileMode) (string, bool, []func(), error) {
	var undo []func()
	kd := filepath.Join(p.cfg.PodDir, VolumesDir, kind)
	vd := filepath.Join(p.cfg.PodDir, VolumesDir)
	if top, err := mkdirAllCreated(vd, 0750); err != nil {
		return "", false, nil, err
	} else if top != "" {
		undo = append(undo, func() { removeEmptyDirs(vd, top) })
	}
	if err := os.Mkdir(kd, kindDirMode(kind)); err == nil {
		undo = append(undo, func() { _ = os.Remove(kd) })
	} else if !errors.Is(err, fs.ErrExist) {
		return "", false, undo, err
	}
	if err := os.Chmod(kd, kindDirMode(kind)); err != nil {
		return "", false, undo, err
	}
	dir := filepath.Join(kd, name)
	err := os.Mkdir(dir, perm)
	switch {
	case errors.Is(err, fs.ErrExist):
		return dir, false, undo, nil
	case err != nil:
		return "", false, undo, err
	}
	undo = append(undo, func() { _ = os.RemoveAll(dir) })
	return dir, true, undo, os.Chmod(dir, perm)
}

// mountTmpfs mounts a tmpfs on dir unless one is there already. It returns whether it mounted.
func mountTmpfs(dir string, options []string) (bool, error) {
	m, ok, err := mountAt(resolve(dir))
	if err != nil {
		return false, err
	}
	if ok && m.fstype == "tmpfs" {
		return false, nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, strings.Join(options, ",")); err != nil {
		return false, &os.PathError{Op: "mount tmpfs", Path: dir, Err: err}
	}
	return true, nil
}

// setUp makes one volume real and returns undo functions for what it made.
func (p *Prepared) setUp(v *prepared, podIP string) ([]func(), error) {
	name := v.vol.Name
	switch v.kind {
	case kindHostPath:
		hp := v.vol.HostPath
		t := corev1.HostPathUnset
		if hp.Type != nil {
			t = *hp.Type
		}
		v.path = filepath.Clean(hp.Path)
		undo, err := checkHostPath(name, p.fieldPath(name), v.path, t, p.allowed())
		if undo != nil {
			return []func(){undo}, err
		}
		return nil, err

	case kindEmptyDir:
		ed := v.vol.EmptyDir
		switch ed.Medium {
		case corev1.StorageMediumDefault, corev1.StorageMediumMemory:
		default:
			return nil, failedMount(nil, "volume %q: emptyDir medium %q is not supported", name, ed.Medium)
		}
		dir, created, undo, err := p.volumeDir(kindEmptyDir, name, 0777)
		v.path = dir
		if err != nil {
			return undo, failedMount(err, "volume %q: creating emptyDir: %v", name, err)
		}
		fresh := created
		if ed.Medium == corev1.StorageMediumMemory {
			var opts []string
			if ed.SizeLimit != nil && ed.SizeLimit.Value() > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", ed.SizeLimit.Value()))
			}
			mounted, err := mountTmpfs(dir, opts)
			if err != nil {
				return undo, failedMount(err, "volume %q: mounting tmpfs: %v", name, err)
			}
			if mounted {
				undo = append(undo, func() { _ = unmount(dir) })
				fresh = true
			}
		}
		if ns := p.cfg.UserNS; ns != nil && fresh {
			if err := ns.ShiftFile(dir); err != nil {
				return undo, failedMount(err, "volume %q: moving to the user namespace: %v", name, err)
			}
		}
		if gid := p.group(); gid != nil && fresh {
			if err := setGroup(dir, *gid, false); err != nil {
				return undo, failedMount(err, "volume %q: applying fsGroup: %v", name, err)
			}
		}
		return undo, nil

	default: // API data: configMap, secret, downwardAPI, projected
		pl, err := p.payload(v, podIP)
		if err != nil {
			return nil, err
		}
		dir, created, undo, err := p.volumeDir(v.kind, name, 0777)
		v.path = dir
		if err != nil {
			return undo, failedMount(err, "volume %q: creating directory: %v", name, err)
		}
		fresh := created
		if memoryBacked(v.kind) {
			mounted, err := mountTmpfs(dir, nil)
			if err != nil {
				return undo, failedMount(err, "volume %q: mounting tmpfs: %v", name, err)
			}
			if mounted {
				undo = append(undo, func() { _ = unmount(dir) })
				fresh = true
			}
		}
		if ns := p.cfg.UserNS; ns != nil && fresh {
			if err := ns.ShiftFile(dir); err != nil {
				return undo, failedMount(err, "volume %q: moving to the user namespace: %v", name, err)
			}
		}
		gid := p.group()
		if gid != nil && fresh {
			if err := setGroup(dir, *gid, true); err != nil {
				return undo, failedMount(err, "volume %q: applying fsGroup: %v", name, err)
			}
		}
		if _, err := writeAtomic(dir, pl, gid, p.cfg.UserNS); err != nil {
			return undo, failedMount(err, "volume %q: writing files: %v", name, err)
		}
		return undo, nil
	}
}

// payload builds the files of an API data volume from its sources.
func (p *Prepared) payload(v *prepared, podIP string) (payload, error) {
	name := v.vol.Name
	out := payload{}
	var err error
	switch vs := v.vol.VolumeSource; {
	case vs.ConfigMap != nil:
		err = loadObject(p.cfg.Objects, p.pod.Namespace, "configmap", p.cfg.ConfigMapDir, vs.ConfigMap.Name, vs.ConfigMap.Items, vs.ConfigMap.DefaultMode, vs.ConfigMap.Optional, !p.cfg.InsecureSecretPerms, out)
	case vs.Secret != nil:
		err = loadObject(p.cfg.Objects, p.pod.Namespace, "secret", p.cfg.SecretDir, vs.Secret.SecretName, vs.Secret.Items, vs.Secret.DefaultMode, vs.Secret.Optional, !p.cfg.InsecureSecretPerms, out)
	case vs.DownwardAPI != nil:
		err = downwardPayload(p.pod, podIP, p.cfg.PodDir, vs.DownwardAPI.Items, vs.DownwardAPI.DefaultMode, out)
	case vs.Projected != nil:
		dm := vs.Projected.DefaultMode
		var errs []error
		for i, s := range vs.Projected.Sources {
			var err error
			switch {
			case s.ConfigMap != nil:
				err = loadObject(p.cfg.Objects, p.pod.Namespace, "configmap", p.cfg.ConfigMapDir, s.ConfigMap.Name, s.ConfigMap.Items, dm, s.ConfigMap.Optional, !p.cfg.InsecureSecretPerms, out)
			case s.Secret != nil:
				err = loadObject(p.cfg.Objects, p.pod.Namespace, "secret", p.cfg.SecretDir, s.Secret.Name, s.Secret.Items, dm, s.Secret.Optional, !p.cfg.InsecureSecretPerms, out)
			case s.DownwardAPI != nil:
				err = downwardPayload(p.pod, podIP, p.cfg.PodDir, s.DownwardAPI.Items, dm, out)
			case s.ServiceAccountToken != nil:
				err = fmt.Errorf("sources[%d]: serviceAccountToken projections are not supported: minipod has no API server to issue tokens", i)
			case s.ClusterTrustBundle != nil:
				err = fmt.Errorf("sources[%d]: clusterTrustBundle projections are not supported", i)
			default:
				err = fmt.Errorf("sources[%d]: this projection is not supported", i)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		return nil, failedMount(err, "volume %q: %s", name, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return out, nil
}

// Refresh re-writes configMap, secret, downwardAPI and projected volumes from their sources
// when their content changed, with the atomic ..data swap; running containers see the new
// files (except through subPath mounts, as on Kubernetes). A volume whose source fails keeps
// its files; the first error is returned after the others are refreshed. It reports whether
// anything changed.
func (p *Prepared) Refresh(pod *corev1.Pod, podIP string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pod != nil {
		p.pod = pod.DeepCopy()
	}
	gid := p.group()
	changed := false
	var first error
	for _, v := range p.sorted() {
		if !v.apiData() {
			continue
		}
		pl, err := p.payload(v, podIP)
		if err == nil {
			var c bool
			c, err = writeAtomic(v.path, pl, gid, p.cfg.UserNS)
			changed = changed || c
			if err != nil {
				err = failedMount(err, "volume %q: writing files: %v", v.vol.Name, err)
			}
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return changed, first
}

// sorted returns the prepared volumes in the pod's order.
func (p *Prepared) sorted() []*prepared {
	var out []*prepared
	for _, v := range p.pod.Spec.Volumes {
		if pv, ok := p.vols[v.Name]; ok {
			out = append(out, pv)
		}
	}
	return out
}

// Cleanup unmounts everything under podDir/volumes and podDir/volume-subpaths (tmpfs volumes,
// subPath binds, mounts a Bidirectional container left) and removes both directories. It works
// from the disk and the mount table alone, so it needs no Prepared, and running it again is
// harmless. Nothing is removed while a mount is left below, so host data bound into the pod
// directory is never deleted.
func Cleanup(podDir string) error {
	if podDir == "" || !filepath.IsAbs(podDir) {
		return failedMount(nil, "pod directory %q must be an absolute path", podDir)
	}
	real, err := filepath.EvalSymlinks(podDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return failedMount(err, "cleaning up volumes: %v", err)
	}
	dirs := []string{filepath.Join(real, SubpathsDir), filepath.Join(real, VolumesDir)}
	if !anyExists(dirs) {
		// Nothing can be mounted below a directory that does not exist. Most pods have no
		// volumes, and the mount table of a busy node is long: tens of kilobytes read and
		// parsed per pod stop, in a burst of stops, for nothing.
		return nil
	}
	if err := unmountUnder(dirs...); err != nil {
		return failedMount(err, "cleaning up volumes: %v", err)
	}
	var errs []error
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failedMount(err, "cleaning up volumes: %v", err)
	}
	return nil
}

// anyExists reports whether any of paths exists, or might: only "does not exist" counts as no.
func anyExists(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// removeEmptyDirs removes leaf and its parents up to top while they are empty directories; it
// never removes a file.
func removeEmptyDirs(leaf, top string) {
	for d := leaf; within(d, top); d = filepath.Dir(d) {
		if unix.Rmdir(d) != nil {
			return
		}
	}
}
