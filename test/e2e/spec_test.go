package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// securityContext, hostNetwork, shareProcessNamespace and hostPort mean what they mean on a
// kubelet.
func TestSecurityAndNamespaces(t *testing.T) {
	d := newDaemon(t)
	d.start()
	hostPort := testHostPort(18000)
	d.writeManifest("sec.yaml", `apiVersion: v1
kind: Pod
metadata: {name: sec}
spec:
  terminationGracePeriodSeconds: 1
  shareProcessNamespace: true
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
  - name: web
    image: minipod.local/busybox:1.35
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports:
    - {containerPort: 8080, hostPort: `+strconv.Itoa(hostPort)+`}
`)
	d.writeManifest("nonroot.yaml", `apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - {name: c, image: minipod.local/busybox:1.35, command: ["true"]}
`)
	d.writeManifest("hostnet.yaml", `apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	d.waitRunning("sec", 60*time.Second)
	d.waitRunning("hostnet", 60*time.Second)

	out, _, _ := d.ctl("exec", "sec", "-c", "c", "--", "id")
	if !strings.Contains(out, "uid=1000") || !strings.Contains(out, "gid=3000") || !strings.Contains(out, "4000") {
		t.Errorf("id = %q, want uid 1000, gid 3000, group 4000", out)
	}
	if _, _, code := d.ctl("exec", "sec", "-c", "c", "--", "touch", "/x"); code == 0 {
		t.Errorf("the root filesystem is writable despite readOnlyRootFilesystem")
	}
	out, _, _ = d.ctl("exec", "sec", "-c", "c", "--", "grep", "-E", "^(CapBnd|NoNewPrivs)", "/proc/self/status")
	if !strings.Contains(out, "CapBnd:\t0000000000000400") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("capabilities / no_new_privs:\n%s", out)
	}
	// shareProcessNamespace: the pause process is PID 1 and the other container's processes show.
	out, _, _ = d.ctl("exec", "sec", "-c", "c", "--", "ps", "-o", "pid,comm")
	if !strings.Contains(out, "    1 pause") || !strings.Contains(out, "httpd") {
		t.Errorf("shared PID namespace: ps shows:\n%s", out)
	}
	// runAsNonRoot with a root image is refused with a clear reason.
	d.eventually(30*time.Second, "nonroot refused", func() (bool, string) {
		p := d.pod("nonroot")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "runAsNonRoot"), fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
	})
	// hostNetwork: the host's name and the host's address.
	host, _ := os.Hostname()
	out, _, _ = d.ctl("exec", "hostnet", "--", "hostname")
	if strings.TrimSpace(out) != host {
		t.Errorf("hostNetwork hostname = %q, want %q", out, host)
	}
	if p := d.pod("hostnet"); p.Status.PodIP != p.Status.HostIP || p.Status.PodIP == "" {
		t.Errorf("hostNetwork podIP %q hostIP %q", p.Status.PodIP, p.Status.HostIP)
	}
	// hostPort: the pod's port is reachable on the host. The test connects to 127.0.0.1 only, so
	// that no traffic goes to any other address of this machine.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/etc/hostname", hostPort))
	if err != nil {
		t.Errorf("hostPort %d on 127.0.0.1: %v", hostPort, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != "sec" {
			t.Errorf("hostPort %d on 127.0.0.1: body %q", hostPort, body)
		}
	}

	d.removeAndCheck("sec", "nonroot", "hostnet")
}

// dnsPolicy None with dnsConfig, hostname, subdomain and hostAliases shape the pod's
// /etc/resolv.conf and /etc/hosts as on a kubelet.
func TestDNSAndHosts(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("dns.yaml", `apiVersion: v1
kind: Pod
metadata: {name: dns}
spec:
  terminationGracePeriodSeconds: 1
  hostname: box
  subdomain: lab
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.10]
    searches: [lab.example]
    options: [{name: ndots, value: "2"}]
  hostAliases: [{ip: 192.0.2.20, hostnames: [db.local, cache.local]}]
  containers:
  - {name: c, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}
`)
	p := d.waitRunning("dns", 60*time.Second)
	resolv, _, _ := d.ctl("exec", "dns", "--", "cat", "/etc/resolv.conf")
	if resolv != "nameserver 192.0.2.10\nsearch lab.example\noptions ndots:2\n" {
		t.Errorf("resolv.conf = %q", resolv)
	}
	hosts, _, _ := d.ctl("exec", "dns", "--", "cat", "/etc/hosts")
	for _, want := range []string{p.Status.PodIP + "\tbox.lab.default.svc.cluster.local\tbox", "192.0.2.20\tdb.local\tcache.local"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("/etc/hosts lacks %q:\n%s", want, hosts)
		}
	}
	if out, _, _ := d.ctl("exec", "dns", "--", "hostname"); strings.TrimSpace(out) != "box" {
		t.Errorf("hostname = %q, want box", out)
	}
}

// More of securityContext (seccomp, privileged, sysctls, fsGroup) and stdin: true.
func TestSecurityMore(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("more.yaml", `apiVersion: v1
kind: Pod
metadata: {name: more}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    fsGroup: 2000
    seccompProfile: {type: RuntimeDefault}
    sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "80"}]
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts: [{name: data, mountPath: /data}]
  - name: priv
    image: minipod.local/busybox:1.35
    securityContext: {privileged: true}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  - name: reader
    image: minipod.local/busybox:1.35
    stdin: true
    # Waits on its open stdin; without stdin: true it would see end-of-file and exit.
    command: ["sh", "-c", "cat; echo stdin closed; exit 3"]
  volumes:
  - {name: data, emptyDir: {}}
`)
	d.waitRunning("more", 60*time.Second)
	get := func(c, cmd string) string {
		out, errs, code := d.ctl("exec", "more", "-c", c, "--", "sh", "-c", cmd)
		if code != 0 {
			t.Errorf("exec %s %q: %d %s", c, cmd, code, errs)
		}
		return strings.TrimSpace(out)
	}
	if got := get("c", "grep ^Seccomp: /proc/self/status"); !strings.HasSuffix(got, "2") {
		t.Errorf("RuntimeDefault seccomp: %q, want mode 2 (filter)", got)
	}
	if got := get("priv", "grep ^Seccomp: /proc/self/status"); !strings.HasSuffix(got, "0") {
		t.Errorf("privileged seccomp: %q, want 0", got)
	}
	// CAP_SYS_ADMIN (bit 21) is in a privileged container's bounding set, not in the default one.
	for c, want := range map[string]bool{"priv": true, "c": false} {
		got := get(c, "grep ^CapBnd: /proc/self/status")
		bits, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(got, "CapBnd:")), 16, 64)
		if err != nil || (bits&(1<<21) != 0) != want {
			t.Errorf("%s: CapBnd %q, want CAP_SYS_ADMIN %v", c, got, want)
		}
	}
	if got := get("c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "80" {
		t.Errorf("sysctl = %q, want 80", got)
	}
	if got := get("c", "stat -c %g /data; id -G"); !strings.HasPrefix(got, "2000") || !strings.Contains(got, "2000") {
		t.Errorf("fsGroup: %q", got)
	}
	if cs := d.pod("more").Status.ContainerStatuses[2]; cs.Name != "reader" || cs.State.Running == nil || cs.RestartCount != 0 {
		t.Errorf("stdin: true container: %+v", cs)
	}
}
