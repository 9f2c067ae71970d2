package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStubOnly(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"systemd-resolved stub", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", true},
		{"two loopback servers", "nameserver 127.0.0.53\nnameserver 127.0.0.1\n", true},
		{"real server", "nameserver 10.0.0.2\n", false},
		{"stub and real server", "nameserver 127.0.0.53\nnameserver 1.1.1.1\n", false},
		{"real server first", "nameserver 8.8.8.8\nnameserver 127.0.0.53\n", false},
		{"ipv6 server", "nameserver ::1\n", false},
		{"no nameserver", "search example.com\noptions ndots:5\n", false},
		{"empty", "", false},
		{"commented stub", "# nameserver 127.0.0.53\nnameserver 192.168.1.1\n", false},
		{"only a commented stub", "# nameserver 127.0.0.53\n", false},
		{"nameserver without address", "nameserver\n", false},
		{"tabs and spaces", "  nameserver\t127.0.0.53  \n", true},
	}
	for _, tt := range tests {
		if got := stubOnly([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: stubOnly(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	tests := []struct {
		name      string
		hostname  string
		fqdn      string
		podIP     string
		aliases   []HostAlias
		resolv    string
		wantLines []string // lines /etc/hosts must have, in this order
		notLines  []string // lines it must not have
	}{
		{
			name: "pod ip", hostname: "web", podIP: "10.88.0.5",
			resolv:    "nameserver 10.0.0.2\nsearch example.com\n",
			wantLines: []string{"127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "10.88.0.5\tweb"},
		},
		{
			name: "subdomain: fqdn first", hostname: "web", fqdn: "web.sub.prod.svc.cluster.local", podIP: "10.88.0.9",
			wantLines: []string{"127.0.0.1\tlocalhost", "10.88.0.9\tweb.sub.prod.svc.cluster.local\tweb"},
			notLines:  []string{"10.88.0.9\tweb\n"},
		},
		{
			name: "host network: no pod ip line", hostname: "node1", podIP: "",
			wantLines: []string{"127.0.0.1\tlocalhost"},
			notLines:  []string{"\tnode1"},
		},
		{
			name: "aliases after the pod ip", hostname: "web", podIP: "10.88.0.7",
			aliases: []HostAlias{
				{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}},
				{IP: "fd00::1", Hostnames: []string{"v6.local"}},
			},
			wantLines: []string{"10.88.0.7\tweb", "10.1.2.3\tfoo.local\tbar.local", "fd00::1\tv6.local"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pods", "uid") // created by WriteFiles
			files, err := WriteFiles(dir, ManagedHosts(tt.hostname, tt.fqdn, tt.podIP, tt.aliases), tt.hostname, []byte(tt.resolv))
			if err != nil {
				t.Fatalf("WriteFiles: %v", err)
			}
			want := Files{
				Hosts:      filepath.Join(dir, "hosts"),
				Hostname:   filepath.Join(dir, "hostname"),
				ResolvConf: filepath.Join(dir, "resolv.conf"),
			}
			if files != want {
				t.Errorf("Files: got %+v, want %+v", files, want)
			}

			hosts := readFile(t, files.Hosts)
			lines := strings.Split(hosts, "\n")
			if !strings.HasSuffix(hosts, "\n") {
				t.Errorf("hosts does not end with a newline: %q", hosts)
			}
			last := -1
			for _, w := range tt.wantLines {
				i := slices.Index(lines, w)
				if i < 0 {
					t.Errorf("hosts lacks the line %q:\n%s", w, hosts)
					continue
				}
				if i < last {
					t.Errorf("hosts line %q is out of order:\n%s", w, hosts)
				}
				last = i
			}
			for _, n := range tt.notLines {
				if strings.Contains(hosts, n) {
					t.Errorf("hosts has %q:\n%s", n, hosts)
				}
			}
			if got := readFile(t, files.Hostname); got != tt.hostname+"\n" {
				t.Errorf("hostname: got %q, want %q", got, tt.hostname+"\n")
			}
			if got := readFile(t, files.ResolvConf); got != tt.resolv {
				t.Errorf("resolv.conf: got %q, want %q", got, tt.resolv)
			}
			checkOnly(t, dir, "hosts", "hostname", "resolv.conf")
			for _, p := range []string{files.Hosts, files.Hostname, files.ResolvConf} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o644 {
					t.Errorf("%s: mode %v, want 0644 (containers running as any user read it)", filepath.Base(p), st.Mode().Perm())
				}
			}
		})
	}
}

// TestWriteFilesReplaces writes twice: the second content wins, the files are new inodes (a
// rename, never a rewrite in place that a container could read half of), and no temporary file
// is left.
func TestWriteFilesReplaces(t *testing.T) {
	dir := t.TempDir()
	first, err := WriteFiles(dir, ManagedHosts("a", "", "10.0.0.1", nil), "a", []byte("nameserver 1.1.1.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]os.FileInfo{}
	for _, p := range []string{first.Hosts, first.Hostname, first.ResolvConf} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = st
	}
	second, err := WriteFiles(dir, ManagedHosts("b", "", "10.0.0.2", nil), "b", []byte("nameserver 8.8.8.8\n"))
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("paths changed: %+v then %+v", first, second)
	}
	for p, old := range before {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(old, st) {
			t.Errorf("%s was rewritten in place, want an atomic replace by rename", filepath.Base(p))
		}
	}
	if h := readFile(t, second.Hosts); !strings.Contains(h, "10.0.0.2\tb\n") || strings.Contains(h, "10.0.0.1") {
		t.Errorf("hosts after the second write:\n%s", h)
	}
	if got := readFile(t, second.Hostname); got != "b\n" {
		t.Errorf("hostname: got %q, want %q", got, "b\n")
	}
	if got := readFile(t, second.ResolvConf); got != "nameserver 8.8.8.8\n" {
		t.Errorf("resolv.conf: got %q", got)
	}
	checkOnly(t, dir, "hosts", "hostname", "resolv.conf")
}

func TestWriteFilesError(t *testing.T) {
	// dir's parent is a regular file: nothing can be created.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(filepath.Join(parent, "pod"), nil, "a", nil); err == nil {
		t.Fatal("WriteFiles under a regular file: no error")
	}
	// A directory where the hosts file should go: the rename fails, no temporary file stays.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hosts", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(dir, nil, "a", nil); err == nil {
		t.Fatal("WriteFiles over a directory: no error")
	}
	checkOnly(t, dir, "hosts")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkOnly fails unless dir holds exactly names (no temporary files).
func checkOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

// WriteFileAtomic replaces a file whole, and never writes through a link left at its temporary
// name.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sandbox.json")
	for _, data := range []string{"first", "second, longer"} {
		if err := WriteFileAtomic(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != data {
			t.Errorf("got %q, want %q", b, data)
		}
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("third"), 0o644); err != nil {
		t.Error(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "third" {
		t.Errorf("got %q after a link was planted at the temporary name", b)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Errorf("the link's target was written: %q", b)
	}
}

// The /etc/hosts files are the kubelet's, byte for byte: its header (the upstream node tests
// tell a kubelet-managed file by it), and the aliases under one comment. A host-network pod
// gets the node's file with its aliases after it (issue 23).
func TestHostsAsKubelet(t *testing.T) {
	aliases := []HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo", "bar"}}, {IP: "10.0.0.1", Hostnames: []string{"baz"}}}
	got := string(ManagedHosts("web", "", "10.88.0.5", aliases))
	want := "# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
		"10.88.0.5\tweb\n" +
		"\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n10.0.0.1\tbaz\n"
	if got != want {
		t.Errorf("pod network:\n%q\nwant\n%q", got, want)
	}
	node := "127.0.0.1\tlocalhost\n192.168.1.10\tnode1\n"
	got = string(HostNetworkHosts([]byte(node), aliases))
	want = "# Kubernetes-managed hosts file (host network).\n" + node +
		"\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n10.0.0.1\tbaz\n"
	if got != want {
		t.Errorf("host network:\n%q\nwant\n%q", got, want)
	}
	if got := string(HostNetworkHosts([]byte(node), nil)); got != "# Kubernetes-managed hosts file (host network).\n"+node {
		t.Errorf("host network without aliases: %q", got)
	}
}
