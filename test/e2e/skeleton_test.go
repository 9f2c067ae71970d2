package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const webPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: server
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo hello-from-$(POD_NAME) > /var/www/index.html && echo server starting && exec httpd -f -v -p 8080 -h /var/www"]
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    ports:
    - containerPort: 8080
  - name: sidecar
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo sidecar up; trap 'exit 0' TERM; while true; do sleep 1; done"]
`

// A two-container pod dropped as a file runs with a pod IP, its containers share the network,
// the host reaches it, and removing the file leaves nothing behind.
func TestPodLifecycle(t *testing.T) {
	d := newDaemon(t)
	d.start()
	path := d.writeManifest("web.yaml", webPod)

	p := d.waitRunning("web", 60*time.Second)
	ip := p.Status.PodIP
	if !strings.HasPrefix(ip, testPrefix) {
		t.Fatalf("pod IP = %q, want one from %s", ip, testSubnet)
	}
	checkStatusFields(t, p, path)

	// The sidecar reaches the server over the pod's shared loopback.
	out, errs, code := d.ctl("exec", "web", "-c", "sidecar", "--", "wget", "-qO-", "http://127.0.0.1:8080/")
	if code != 0 || strings.TrimSpace(out) != "hello-from-web" {
		t.Fatalf("sidecar -> 127.0.0.1:8080: code %d out %q err %q", code, out, errs)
	}
	// The host reaches the pod IP.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ip + ":8080/")
	if err != nil {
		t.Fatalf("host -> pod IP: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "hello-from-web" {
		t.Fatalf("host -> pod IP: body %q", body)
	}
	// hostname inside is the pod name, in both containers (shared UTS namespace).
	for _, c := range []string{"server", "sidecar"} {
		out, errs, code := d.ctl("exec", "web", "-c", c, "--", "hostname")
		if code != 0 || strings.TrimSpace(out) != "web" {
			t.Fatalf("hostname in %s: code %d out %q err %q", c, code, out, errs)
		}
	}
	// /etc/hosts maps the pod IP to the pod name.
	out, _, _ = d.ctl("exec", "web", "-c", "sidecar", "--", "cat", "/etc/hosts")
	if !strings.Contains(out, ip+"\tweb") {
		t.Fatalf("/etc/hosts lacks %s web:\n%s", ip, out)
	}
	// The exit code of an exec'd command is passed through.
	if _, _, code := d.ctl("exec", "web", "-c", "sidecar", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("exec exit code = %d, want 7", code)
	}
	// Logs of each container.
	out, errs, code = d.ctl("logs", "web", "-c", "sidecar")
	if code != 0 || !strings.Contains(out, "sidecar up") {
		t.Fatalf("logs sidecar: code %d out %q err %q", code, out, errs)
	}
	// The table looks like kubectl get pods.
	out, _, code = d.ctl("status")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "web") || !strings.Contains(out, "2/2") || !strings.Contains(out, "Running") {
		t.Fatalf("status table:\n%s", out)
	}
	out, _, _ = d.ctl("status", "-o", "wide")
	if !strings.Contains(out, ip) || !strings.Contains(out, path) {
		t.Fatalf("status -o wide lacks IP or manifest:\n%s", out)
	}

	// Touching the file with the same content restarts nothing.
	ids := containerIDs(p)
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	d.writeManifest("web.yaml", webPod) // rewritten, same content
	// A marker file written after the rewrite shows when the source has read both.
	d.writeManifest("marker.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: marker}\n")
	d.eventually(10*time.Second, "marker listed", func() (bool, string) {
		return d.pod("marker") != nil, ""
	})
	os.Remove(d.manifests + "/marker.yaml")
	if got := containerIDs(d.pod("web")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("same content restarted containers: %v -> %v", ids, got)
	}

	// Removing the file removes the pod and everything it had.
	start := time.Now()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	d.waitGone("web", 30*time.Second)
	t.Logf("pod removed in %s", time.Since(start))
	d.eventually(15*time.Second, "nothing left of pod web", func() (bool, string) {
		left := d.leftovers(ip)
		return len(left) == 0, strings.Join(left, "\n")
	})
}

func containerIDs(p *corev1.Pod) []string {
	var ids []string
	if p == nil {
		return nil
	}
	for _, c := range p.Status.ContainerStatuses {
		ids = append(ids, c.ContainerID)
	}
	return ids
}

// checkStatusFields checks that a running pod's status is filled as a kubelet fills it.
func checkStatusFields(t *testing.T, p *corev1.Pod, path string) {
	t.Helper()
	if p.APIVersion != "v1" || p.Kind != "Pod" {
		t.Errorf("item type = %s/%s, want v1/Pod", p.APIVersion, p.Kind)
	}
	if got := p.Annotations["minipod.io/manifest"]; got != path {
		t.Errorf("annotation minipod.io/manifest = %q, want %q", got, path)
	}
	if p.Namespace != "default" || p.UID == "" {
		t.Errorf("namespace %q uid %q", p.Namespace, p.UID)
	}
	st := p.Status
	if len(st.PodIPs) == 0 || st.PodIPs[0].IP != st.PodIP {
		t.Errorf("podIPs %v vs podIP %q", st.PodIPs, st.PodIP)
	}
	if st.HostIP == "" || st.StartTime == nil {
		t.Errorf("hostIP %q startTime %v", st.HostIP, st.StartTime)
	}
	want := map[corev1.PodConditionType]bool{corev1.PodReady: false, corev1.ContainersReady: false, corev1.PodInitialized: false, corev1.PodReadyToStartContainers: false}
	for _, c := range st.Conditions {
		if _, ok := want[c.Type]; ok {
			want[c.Type] = c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero()
		}
	}
	for c, ok := range want {
		if !ok {
			t.Errorf("condition %s not True with a transition time: %+v", c, st.Conditions)
		}
	}
	if len(st.ContainerStatuses) != 2 {
		t.Fatalf("containerStatuses: %d, want 2", len(st.ContainerStatuses))
	}
	for _, c := range st.ContainerStatuses {
		if c.Name == "" || !c.Ready || c.Started == nil || !*c.Started || c.RestartCount != 0 ||
			c.Image != "minipod.local/busybox:1.35" || !strings.HasPrefix(c.ImageID, "sha256:") ||
			!strings.HasPrefix(c.ContainerID, "containerd://") || c.State.Running == nil || c.State.Running.StartedAt.IsZero() {
			t.Errorf("container status incomplete: %+v", c)
		}
	}
}

// Files that cannot be used are listed with a reason and a message naming the field, while the
// good pod keeps running and the daemon keeps serving.
func TestBadManifests(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.waitRunning("web", 60*time.Second)
	ids := containerIDs(d.pod("web"))

	d.writeManifest("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n spec: [\n")
	d.writeManifest("empty.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nocontainers\nspec:\n  containers: []\n")
	d.writeManifest("dup.yaml", strings.Replace(webPod, "name: server", "name: server2", 1))
	// Editor leftovers are never read.
	d.writeManifest("web.yaml~", "junk")
	d.writeManifest("web.yaml.bak", strings.Replace(webPod, "name: web", "name: backup", 1))

	d.eventually(20*time.Second, "problems listed", func() (bool, string) {
		byFile := map[string]corev1.Pod{}
		for _, p := range d.pods() {
			byFile[p.Annotations["minipod.io/manifest"]] = p
		}
		b, ok1 := byFile[d.manifests+"/broken.yaml"]
		e, ok2 := byFile[d.manifests+"/empty.yaml"]
		u, ok3 := byFile[d.manifests+"/dup.yaml"]
		if !ok1 || !ok2 || !ok3 {
			return false, fmt.Sprintf("listed: %v", keys(byFile))
		}
		if b.Status.Reason != "InvalidManifest" || b.Status.Message == "" {
			return false, fmt.Sprintf("broken: %+v", b.Status)
		}
		if e.Name != "nocontainers" || e.Status.Reason != "InvalidManifest" || !strings.Contains(e.Status.Message, "spec.containers") {
			return false, fmt.Sprintf("empty: %s %+v", e.Name, e.Status)
		}
		if u.Name != "web" || u.Status.Reason != "NameConflict" {
			return false, fmt.Sprintf("dup: %s %+v", u.Name, u.Status)
		}
		for _, p := range byFile {
			if p.Name == "backup" {
				return false, "a .bak file was read"
			}
		}
		return true, ""
	})
	out, _, _ := d.ctl("status")
	if !strings.Contains(out, "InvalidManifest") || !strings.Contains(out, "NameConflict") {
		t.Fatalf("status table does not show the reasons:\n%s", out)
	}
	if got := containerIDs(d.pod("web")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("good pod was disturbed: %v -> %v", ids, got)
	}
	if p := d.pod("web"); p.Status.Phase != corev1.PodRunning {
		t.Fatalf("good pod phase %s", p.Status.Phase)
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

// A changed file replaces the pod; a crashing container restarts; a restarted daemon adopts
// running pods without restarting them.
func TestReplaceRestartAdopt(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "4s")
	d.start()
	path := d.writeManifest("web.yaml", webPod)
	old := d.waitRunning("web", 60*time.Second)

	changed := strings.Replace(webPod, "app: web", "app: web2", 1)
	d.writeManifest("web.yaml", changed)
	var cur *corev1.Pod
	d.eventually(60*time.Second, "pod replaced", func() (bool, string) {
		p := d.pod("web")
		if p == nil || p.UID == old.UID {
			return false, "old version still listed"
		}
		cur = p
		return p.Status.Phase == corev1.PodRunning && p.Labels["app"] == "web2", string(p.Status.Phase)
	})
	if fmt.Sprint(containerIDs(cur)) == fmt.Sprint(containerIDs(old)) {
		t.Fatalf("containers not replaced")
	}

	// A crashing container restarts with a growing restartCount.
	d.writeManifest("crash.yaml", `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo attempt; exit 1"]
`)
	d.eventually(60*time.Second, "crash restarted twice", func() (bool, string) {
		p := d.pod("crash")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount < 2 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
			return false, fmt.Sprintf("restarts %d state %+v last %+v", cs.RestartCount, cs.State, cs.LastTerminationState)
		}
		return true, ""
	})

	// SIGKILL the daemon and start it again: the web pod is adopted, not restarted, and the
	// crashing pod keeps its restart count.
	before := containerIDs(d.pod("web"))
	restarts := d.pod("crash").Status.ContainerStatuses[0].RestartCount
	d.stop(syscall.SIGKILL)
	d.start()
	d.eventually(30*time.Second, "web adopted", func() (bool, string) {
		p := d.pod("web")
		if p == nil || p.Status.Phase != corev1.PodRunning {
			return false, "not running"
		}
		got := containerIDs(p)
		if fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("adoption restarted containers: %v -> %v", before, got)
		}
		for _, c := range p.Status.ContainerStatuses {
			if !c.Ready {
				return false, c.Name + " not ready"
			}
		}
		return true, ""
	})

	var crashIP string
	d.eventually(30*time.Second, "crash adopted", func() (bool, string) {
		p := d.pod("crash")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		crashIP = p.Status.PodIP
		got := p.Status.ContainerStatuses[0].RestartCount
		return got >= restarts && crashIP != "", fmt.Sprintf("restartCount %d (was %d), ip %q", got, restarts, crashIP)
	})

	// Removing everything while the daemon runs leaves nothing.
	ips := []string{d.pod("web").Status.PodIP, crashIP}
	os.Remove(path)
	os.Remove(d.manifests + "/crash.yaml")
	d.waitGone("web", 30*time.Second)
	d.waitGone("crash", 30*time.Second)
	d.eventually(15*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(ips...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}
