package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Dirs are the node's directories that a pod's names and paths live under.
type Dirs struct {
	State      string // <State>/pods/<uid> holds each pod's sandbox record and files
	Log        string // <Log>/<namespace>_<name>_<uid>/<container>/<attempt>.log
	NetNS      string // <NetNS>/minipod-<short uid>
	CgroupRoot string // pods' cgroups are <CgroupRoot>/pod<uid>/<container>; "" for none
}

// names derives every name and path of one pod from its identity. These names live on disk and
// in containerd (container IDs, labels, the netns pin, the state and log directories), so a
// daemon that adopts pods made by an earlier build finds them only while every caller spells
// them the same way: here, and nowhere else.
type names struct {
	dirs                 Dirs
	namespace, name, uid string
}

func (d Dirs) pod(namespace, name, uid string) names {
	return names{dirs: d, namespace: namespace, name: name, uid: uid}
}

// Key is a pod's identity.
func Key(namespace, name string) string { return namespace + "/" + name }

func (n names) key() string { return Key(n.namespace, n.name) }

// short is the prefix of the UID that container IDs, the netns and snapshots are named by.
func (n names) short() string {
	if len(n.uid) > 16 {
		return n.uid[:16]
	}
	return n.uid
}

// podsDir holds one directory per pod UID.
func (d Dirs) podsDir() string { return filepath.Join(d.State, "pods") }

func (n names) dir() string { return filepath.Join(n.dirs.podsDir(), n.uid) }

// rolloutsDir holds one rollout record per pod key, named by rolloutFile.
func (d Dirs) rolloutsDir() string { return filepath.Join(d.State, "rollouts") }

func rolloutFile(key string) string { return strings.Replace(key, "/", "_", 1) + ".json" }

// recordPath is the sandbox record's file (sandboxRecord).
func (n names) recordPath() string { return recordIn(n.dir()) }

func recordIn(dir string) string { return filepath.Join(dir, "sandbox.json") }

func (n names) sandboxID() string        { return n.short() + "-sandbox" }
func (n names) netns() string            { return filepath.Join(n.dirs.NetNS, "minipod-"+n.short()) }
func (n names) snapshotPrefix() string   { return n.short() + "-" }
func (n names) fifoDir(id string) string { return filepath.Join(n.dir(), "fifo", id) }

// logDir holds the logs of every container of the pod, as the kubelet lays them out.
func (n names) logDir() string {
	return filepath.Join(n.dirs.Log, fmt.Sprintf("%s_%s_%s", n.namespace, n.name, n.uid))
}

func (n names) logPath(container string, attempt int) string {
	return filepath.Join(n.logDir(), container, strconv.Itoa(attempt)+".log")
}

func (n names) termLogPath(container string, attempt int) string {
	return filepath.Join(n.dir(), "containers", container, strconv.Itoa(attempt)+".termination-log")
}

// containerID names one attempt of a container: unique per pod version, container and attempt,
// and short enough for containerd and runc.
func (n names) containerID(container string, attempt int) string {
	if len(container) > 40 {
		container = container[:40]
	}
	return fmt.Sprintf("%s-%s-%d", n.short(), container, attempt)
}

// pruneAttempts removes what a container's attempts before keepFrom left: their logs (and the
// logs' rotated files) and termination message files. As on a kubelet, only the current and
// the previous attempt are kept, so that a crash loop cannot fill the disk while `logs
// --previous` still works.
func (n names) pruneAttempts(container string, keepFrom int) {
	for _, dir := range []string{filepath.Join(n.logDir(), container), filepath.Join(n.dir(), "containers", container)} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			num, _, _ := strings.Cut(e.Name(), ".")
			if attempt, err := strconv.Atoi(num); err == nil && attempt < keepFrom {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

func (n names) cgroupParent() string {
	if n.dirs.CgroupRoot == "" {
		return ""
	}
	return n.dirs.CgroupRoot + "/pod" + n.uid
}
