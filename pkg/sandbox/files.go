// Package sandbox makes the parts of a pod that its containers share: the pinned network
// namespace, its CNI attachment, and the /etc/hosts, /etc/hostname and /etc/resolv.conf files
// bind-mounted into every container. The pause container itself is created by the pod worker
// through the runtime package; this package does not talk to containerd.
package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Files are the per-pod files every container mounts.
type Files struct {
	Hosts, Hostname, ResolvConf string
}

// FilesIn names the pod files WriteFiles writes into dir.
func FilesIn(dir string) Files {
	return Files{
		Hosts:      filepath.Join(dir, "hosts"),
		Hostname:   filepath.Join(dir, "hostname"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
	}
}

// HostAlias is one extra /etc/hosts entry.
type HostAlias struct {
	IP        string
	Hostnames []string
}

// The kubelet's first lines of the /etc/hosts it writes: the upstream node tests tell a
// kubelet-managed file by the first, and a host-network pod's file carries the second.
const (
	managedHostsHeader            = "# Kubernetes-managed hosts file.\n"
	managedHostsHeaderHostNetwork = "# Kubernetes-managed hosts file (host network).\n"
)

// ManagedHosts is the /etc/hosts of a pod with a network namespace of its own: localhost, the
// pod IP with its hostname (fqdn first when it is set, hostname with subdomain, as on a
// kubelet), and the aliases.
func ManagedHosts(hostname, fqdn, podIP string, aliases []HostAlias) []byte {
	var h bytes.Buffer
	h.WriteString(managedHostsHeader)
	h.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	h.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if podIP != "" && fqdn != "" {
		fmt.Fprintf(&h, "%s\t%s\t%s\n", podIP, fqdn, hostname)
	} else if podIP != "" {
		fmt.Fprintf(&h, "%s\t%s\n", podIP, hostname)
	}
	writeAliases(&h, aliases)
	return h.Bytes()
}

// HostNetworkHosts is the /etc/hosts of a pod in the node's network namespace: the node's own
// file, then the pod's hostAliases, as the kubelet writes it.
func HostNetworkHosts(node []byte, aliases []HostAlias) []byte {
	var h bytes.Buffer
	h.WriteString(managedHostsHeaderHostNetwork)
	h.Write(node)
	writeAliases(&h, aliases)
	return h.Bytes()
}

// writeAliases appends the hostAliases under one comment, an IP's names on one line.
func writeAliases(h *bytes.Buffer, aliases []HostAlias) {
	if len(aliases) == 0 {
		return
	}
	h.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(h, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
}

// WriteFiles writes the pod's /etc/hosts (hosts: ManagedHosts or HostNetworkHosts),
// /etc/hostname and /etc/resolv.conf into dir. Files are replaced atomically so a container
// never reads half of one.
func WriteFiles(dir string, hosts []byte, hostname string, resolv []byte) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("create pod dir: %w", err)
	}
	f := FilesIn(dir)
	for _, w := range []struct {
		path string
		data []byte
	}{
		{f.Hosts, hosts},
		{f.Hostname, []byte(hostname + "\n")},
		{f.ResolvConf, resolv},
	} {
		if err := writeAtomic(w.path, w.data); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

func writeAtomic(path string, data []byte) error { return WriteFileAtomic(path, data, 0o644) }

// WriteFileAtomic replaces the file at path with data so that a crash or a power loss at any
// moment leaves either the old file or the new one, whole: the data is written to a temporary
// file and synced, renamed into place, and the directory synced so that the rename is durable.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	tmp := path + ".tmp"
	// Whatever is at the temporary name (a crash's leftover) goes; the new file is made anew,
	// never opened through a link.
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// HostResolvConf returns the resolv.conf a pod with dnsPolicy Default gets: the host's, read the
// way the kubelet does. When the host's file points at systemd-resolved's local stub
// (127.0.0.53), that address is useless inside a pod's network namespace, so the upstream file
// systemd-resolved keeps is used instead.
func HostResolvConf() []byte {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	if stubOnly(data) {
		if up, err := os.ReadFile("/run/systemd/resolve/resolv.conf"); err == nil {
			return up
		}
	}
	return data
}

func stubOnly(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	seen := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if !strings.HasPrefix(fields[1], "127.") {
				return false
			}
			seen = true
		}
	}
	return seen
}
