package volume

import (
	"os"
)

// setGroup gives one path to the fsGroup with the kubelet's masks (SetVolumeOwnership): group
// rw on files of writable volumes, group r on read-only ones, and on directories also group x
// and setgid so that new files inherit the group. Symlinks only change their group.
func setGroup(p string, gid int64, readOnly bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if err := os.Lchown(p, -1, int(gid)); err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil
	}
	mask := os.FileMode(0660)
	if readOnly {
		mask = 0440
	}
	if fi.IsDir() {
		mask |= os.ModeSetgid | 0110
	}
	return os.Chmod(p, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)|mask)
}
