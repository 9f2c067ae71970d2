package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretsPod uses the secret db every way a pod can: env valueFrom.secretKeyRef, envFrom
// secretRef with a prefix, a static env value and args that expand $(VAR) of it, an init
// container, and a secret volume.
const secretsPod = `apiVersion: v1
kind: Pod
metadata: {name: sec, labels: {app: sec}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "test -n \"$PW\"", "init", "$(PW)"]
    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}
  containers:
  - name: app
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    args: ["app", "--password=$(PW)", "$(URL)"]
    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}
    - {name: URL, value: "postgres://app:$(PW)@db:5432/app"}
    envFrom:
    - {prefix: DB_, secretRef: {name: db}}
    readinessProbe:
      exec: {command: ["sh", "-c", "test -n \"$PW\""]}
      periodSeconds: 1
    volumeMounts:
    - {name: sec, mountPath: /etc/sec, readOnly: true}
  volumes:
  - {name: sec, secret: {secretName: db}}
`

// Secrets from the secrets directory never appear in the daemon's log (at debug level),
// status in any format, describe, events, metrics, the state dir outside the secret volume
// itself, the log dir, or containerd's labels and annotations; also not when a pod refers to
// a key or a secret that is missing. Only the OCI spec's env and args hold it, as on a kubelet.
func TestSecretsNeverLeak(t *testing.T) { secretsNeverLeak(t, false) }

// The same for a Secret of a manifest file, and for the files refused because of a Secret:
// one whose value is not the JSON its type requires, one that others may read.
func TestManifestSecretsNeverLeak(t *testing.T) { secretsNeverLeak(t, true) }

func secretsNeverLeak(t *testing.T, inManifest bool) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	value := "s3cr3t-" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(value))
	secDir := t.TempDir()
	if !inManifest {
		os.MkdirAll(filepath.Join(secDir, "db"), 0o700)
		os.WriteFile(filepath.Join(secDir, "db", "password"), []byte(value), 0o600)
		os.WriteFile(filepath.Join(secDir, "db", "user"), []byte("app"), 0o600)
	}

	d := newDaemon(t, "--secret-dir", secDir, "--log-level", "debug")
	d.start()
	if inManifest {
		secret := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: %q, user: app}\n", value)
		d.writeManifestMode("db.yaml", secret, 0o600)
		d.writeManifest("open.yaml", strings.ReplaceAll(secret, "name: db", "name: open"))
		d.writeManifestMode("badtype.yaml", fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: reg}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: %q}\n", value), 0o600)
		d.eventually(30*time.Second, "the refused secrets listed", func() (bool, string) {
			open, bad := d.pod("open.yaml"), d.pod("badtype.yaml")
			return open != nil && open.Status.Reason == "InsecureManifestPermissions" && bad != nil && strings.Contains(bad.Status.Message, "<secret contents redacted>"),
				fmt.Sprintf("%v %v", open, bad)
		})
	}
	d.writeManifest("sec.yaml", secretsPod)
	// A key the secret lacks, a secret that does not exist (env and envFrom), and a volume
	// item naming a missing key: each is reported by name, never with the secret's content.
	d.writeManifest("nokey.yaml", `apiVersion: v1
kind: Pod
metadata: {name: nokey}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "sleep 3600", "c", "$(PW)"]
    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}
    - {name: MISSING, valueFrom: {secretKeyRef: {name: db, key: passw0rd}}}
`)
	d.writeManifest("noname.yaml", `apiVersion: v1
kind: Pod
metadata: {name: noname}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sleep", "3600"]
    envFrom: [{secretRef: {name: db}}, {secretRef: {name: nosuchsecret}}]
`)
	d.writeManifest("noitem.yaml", `apiVersion: v1
kind: Pod
metadata: {name: noitem}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sleep", "3600"]
    env: [{name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}]
    volumeMounts: [{name: s, mountPath: /s}]
  volumes:
  - {name: s, secret: {secretName: db, items: [{key: password, path: pw}, {key: nokey, path: nk}]}}
`)
	// A container that cannot start, with the secret in its args.
	d.writeManifest("nostart.yaml", `apiVersion: v1
kind: Pod
metadata: {name: nostart}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["/no/such/binary", "--password=$(PW)"]
    env: [{name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}]
`)

	d.waitRunning("sec", 60*time.Second)
	// The secret reached the app every way, without being printed: the container compares its
	// sources and prints a hash.
	check := `set -e
v=$(cat /etc/sec/password)
test "$PW" = "$v"; test "$DB_password" = "$v"; test "$DB_user" = app
test "$URL" = "postgres://app:$v@db:5432/app"
tr '\0' '\n' </proc/1/cmdline | grep -qxF -- "--password=$v"
tr '\0' '\n' </proc/1/cmdline | grep -qxF -- "$URL"
printf %s "$v" | sha256sum`
	out, errs, code := d.ctl("exec", "sec", "-c", "app", "--", "sh", "-c", check)
	if code != 0 || !strings.HasPrefix(out, hex.EncodeToString(sum[:])) {
		t.Fatalf("the secret did not reach the container every way: code %d out %q err %q", code, out, errs)
	}
	waiting := func(name, reason string, parts ...string) {
		d.eventually(60*time.Second, name+" "+reason, func() (bool, string) {
			p := d.pod(name)
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, "no status"
			}
			cs := p.Status.ContainerStatuses[0]
			msg := ""
			switch {
			case cs.State.Waiting != nil:
				msg = cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
			case cs.State.Terminated != nil:
				msg = cs.State.Terminated.Reason + ": " + cs.State.Terminated.Message
			}
			if reason != "" && !strings.HasPrefix(msg, reason+": ") {
				return false, msg
			}
			for _, part := range parts {
				if !strings.Contains(msg, part) {
					return false, msg
				}
			}
			return true, ""
		})
	}
	waiting("nokey", "CreateContainerConfigError", "passw0rd", "db")
	waiting("noname", "CreateContainerConfigError", "nosuchsecret")
	waiting("nostart", "", "/no/such/binary")
	d.eventually(60*time.Second, "noitem FailedMount", func() (bool, string) {
		out, _, _ := d.ctl("events", "noitem")
		return strings.Contains(out, "FailedMount") && strings.Contains(out, "nokey"), out
	})
	var leaks []string
	look := func(where, text string) {
		if strings.Contains(text, value) {
			i := strings.Index(text, value)
			from, to := max(0, i-200), min(len(text), i+len(value)+100)
			leaks = append(leaks, fmt.Sprintf("%s: ...%s...", where, text[from:to]))
		}
	}
	for _, args := range [][]string{
		{"status"}, {"status", "-o", "wide"}, {"status", "-o", "json"}, {"status", "-o", "yaml"},
		{"events"}, {"describe", "sec"}, {"describe", "nokey"}, {"describe", "noname"}, {"describe", "noitem"},
		{"describe", "nostart"}, {"logs", "nostart", "-c", "c"},
	} {
		out, errs, _ := d.ctl(args...)
		look("minipodctl "+strings.Join(args, " "), out+errs)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	for _, path := range []string{"/metrics", "/v1/health"} {
		resp, err := c.Get("http://minipod" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		look(path, string(body))
	}
	// containerd's view of every container, but for the env and args of its OCI spec.
	ctr := func(args ...string) []byte {
		out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).Output()
		if err != nil {
			t.Fatalf("ctr %v: %v", args, err)
		}
		return out
	}
	ids := strings.Fields(string(ctr("containers", "ls", "-q")))
	if len(ids) < 3 {
		t.Fatalf("containers in containerd: %v", ids)
	}
	inSpec := false
	for _, id := range ids {
		var info map[string]any
		if err := json.Unmarshal(ctr("containers", "info", id), &info); err != nil {
			t.Fatal(err)
		}
		if proc, ok := info["Spec"].(map[string]any)["process"].(map[string]any); ok {
			b, _ := json.Marshal(proc)
			inSpec = inSpec || strings.Contains(string(b), value)
			delete(proc, "env")
			delete(proc, "args")
		}
		b, _ := json.Marshal(info)
		look("ctr containers info "+id+" (but the spec's process env and args)", string(b))
	}
	if !inSpec {
		t.Errorf("the value is in no container's OCI spec: the search below would not find it anywhere")
	}
	// Files: the state dir, the log dir, the daemon's own log. The secret volume, and only it,
	// holds the value.
	mounts := secretVolumeMounts(t, d.state)
	if len(mounts) == 0 {
		t.Fatalf("no secret volume mounted under %s", d.state)
	}
	inVolume := false
	for _, root := range []string{d.state, d.logs, d.logPath} {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			for _, m := range mounts {
				if p == m || strings.HasPrefix(p, m+"/") {
					if !e.IsDir() {
						b, _ := os.ReadFile(p)
						inVolume = inVolume || strings.Contains(string(b), value)
					}
					return nil
				}
			}
			if e.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				look(p, string(b))
			}
			return nil
		})
	}
	if !inVolume {
		t.Errorf("the value is in no file of the secret volumes %v: the search would not find it anywhere", mounts)
	}
	if log, _ := os.ReadFile(d.logPath); !strings.Contains(string(log), "level=DEBUG") {
		t.Errorf("the daemon logged nothing at debug level: the log check proves little")
	}
	for _, l := range leaks {
		t.Errorf("secret value leaked: %s", l)
	}
}

// secretVolumeMounts lists the mount points below dir of secret volumes (tmpfs mounts in a
// volumes/secret directory).
func secretVolumeMounts(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], real+"/") && strings.Contains(fields[4], "/volumes/secret/") {
			out = append(out, dir+strings.TrimPrefix(fields[4], real))
		}
	}
	return out
}
