package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/minipod/minipod/pkg/api"
)

type fakeStore struct{ pods []corev1.Pod }

func (s *fakeStore) List() []corev1.Pod { return s.pods }

type fakeRuntime struct{ logDir string }

func (r *fakeRuntime) LogPath(ns, name, container string, previous bool) (string, error) {
	return filepath.Join(r.logDir, ns+"_"+name+"_"+container+".log"), nil
}

func (r *fakeRuntime) Exec(ctx context.Context, ns, name, container string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	switch cmd[0] {
	case "cat":
		if stdin != nil {
			_, err := io.Copy(stdout, stdin)
			return 0, err
		}
		return 0, nil
	case "sh": // sh -c 'exit 3' style: echo the args, complain, exit 3
		fmt.Fprintf(stdout, "%s in %s/%s tty=%v: %s\n", container, ns, name, tty, strings.Join(cmd, " "))
		fmt.Fprintln(stderr, "warning: oops")
		return 3, nil
	}
	return -1, fmt.Errorf("exec: %q: executable file not found in $PATH", cmd[0])
}

// serve starts the real API server with fakes and returns its socket.
func serve(t *testing.T, pods ...corev1.Pod) (string, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "minipod.sock")
	srv := api.NewServer(&fakeStore{pods: pods}, &fakeRuntime{logDir: dir}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock, 0, -1) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i > 500 {
			t.Fatal("server did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return sock, dir
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func samplePods() []corev1.Pod {
	tnow := time.Now()
	start := metav1.NewTime(tnow.Add(-(51*time.Hour + 30*time.Minute)))
	web := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default",
			CreationTimestamp: start,
			Annotations:       map[string]string{"minipod.io/manifest": "/etc/minipod/manifests/web.yaml"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.88.0.2", StartTime: &start,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "nginx", Ready: true, RestartCount: 2,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, FinishedAt: metav1.NewTime(tnow.Add(-(45*time.Minute + 30*time.Second)))}}}}},
	}
	api := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "prod", CreationTimestamp: start},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate"}},
			Containers:     []corev1.Container{{Name: "server"}, {Name: "proxy"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "server", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, RestartCount: 4},
				{Name: "proxy", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	broken := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "staging", CreationTimestamp: start},
		Status:     corev1.PodStatus{Phase: corev1.PodFailed, Reason: "InvalidManifest", Message: "spec.containers: Required value"},
	}
	return []corev1.Pod{web, api, broken}
}

func TestStatusTable(t *testing.T) {
	sock, _ := serve(t, samplePods()...)
	r := runCLI(t, "", "status", "--socket", sock)
	want := strings.Join([]string{
		"NAME          READY   STATUS             RESTARTS      AGE",
		"web           1/1     Running            2 (45m ago)   2d3h",
		"prod/api      1/2     CrashLoopBackOff   4             2d3h",
		"staging/web   0/0     InvalidManifest    0             2d3h",
		""}, "\n")
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("status: code %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}

	// Wide, with the socket from the environment and the flag after the name.
	t.Setenv("MINIPOD_SOCKET", sock)
	r = runCLI(t, "", "status", "web", "-o", "wide")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("status web -o wide: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if f := strings.Fields(lines[0]); !reflect.DeepEqual(f, []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "MANIFEST", "REVISION"}) {
		t.Errorf("wide header = %v", f)
	}
	if f := strings.Fields(lines[1]); !reflect.DeepEqual(f, []string{"web", "1/1", "Running", "2", "(45m", "ago)", "2d3h", "10.88.0.2", "/etc/minipod/manifests/web.yaml", "<none>"}) {
		t.Errorf("wide row = %v", f)
	}
	if f := strings.Fields(lines[2]); f[0] != "staging/web" || f[len(f)-3] != "<none>" || f[len(f)-2] != "<none>" || f[len(f)-1] != "<none>" {
		t.Errorf("wide row = %v", f)
	}

	r = runCLI(t, "", "status", "prod/api")
	if r.code != 0 || !strings.Contains(r.stdout, "prod/api") || strings.Contains(r.stdout, "web") {
		t.Errorf("status prod/api: %d %q", r.code, r.stdout)
	}
	r = runCLI(t, "", "status", "nope")
	if r.code != 1 || r.stdout != "" || r.stderr != "Error: pod \"nope\" not found\n" {
		t.Errorf("status nope: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "", "status", "-o", "xml")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: unknown output format") {
		t.Errorf("status -o xml: %d %q", r.code, r.stderr)
	}
}

func TestStatusJSONAndYAML(t *testing.T) {
	pods := samplePods()
	sock, _ := serve(t, pods...)
	raw, err := (&api.Client{Socket: sock}).PodListJSON(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, bytes.TrimSpace(raw), "", "    "); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "", "--socket", sock, "status", "-o", "json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("status -o json: %d %q", r.code, r.stderr)
	}
	if r.stdout != indented.String()+"\n" {
		t.Errorf("json output is not the server's list, pretty-printed:\n%s\nwant:\n%s", r.stdout, indented.String())
	}
	if !strings.HasPrefix(r.stdout, "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"PodList\",\n    \"metadata\": {},\n    \"items\": [\n        {\n") {
		t.Errorf("json output head:\n%s", r.stdout[:min(200, len(r.stdout))])
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 3 || list.Items[0].Kind != "Pod" {
		t.Errorf("json output does not decode to the 3 pods: %v", err)
	}

	r = runCLI(t, "", "status", "web", "-ojson", "--socket="+sock)
	list = corev1.PodList{}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("status web -ojson: %d %v %q", r.code, err, r.stderr)
	}
	if len(list.Items) != 2 || list.Items[0].Namespace != "default" || list.Items[1].Namespace != "staging" {
		t.Errorf("status web -o json items = %d", len(list.Items))
	}

	r = runCLI(t, "", "status", "-o", "yaml", "--socket", sock, "prod/api")
	list = corev1.PodList{}
	if err := yaml.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("status -o yaml: %d %v %q", r.code, err, r.stderr)
	}
	if list.Kind != "PodList" || len(list.Items) != 1 || list.Items[0].Name != "api" ||
		list.Items[0].Status.ContainerStatuses[0].RestartCount != 4 {
		t.Errorf("yaml list = %+v", list)
	}
	if !strings.HasPrefix(r.stdout, "apiVersion: v1\nitems:\n- apiVersion: v1\n") {
		t.Errorf("yaml output head:\n%s", r.stdout[:min(200, len(r.stdout))])
	}
}

func TestStatusEmptyAndUnreachable(t *testing.T) {
	sock, _ := serve(t)
	r := runCLI(t, "", "status", "--socket", sock)
	if r.code != 0 || r.stdout != "" || r.stderr != "No pods found.\n" {
		t.Errorf("empty table: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "", "status", "--socket", sock, "-o", "json")
	if r.code != 0 || r.stdout != "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"PodList\",\n    \"metadata\": {},\n    \"items\": []\n}\n" {
		t.Errorf("empty json: %d %q", r.code, r.stdout)
	}

	missing := filepath.Join(t.TempDir(), "nothing.sock")
	r = runCLI(t, "", "status", "--socket", missing)
	if want := "Error: cannot reach minipod at " + missing + ": is the daemon running?\n"; r.code != 1 || r.stderr != want {
		t.Errorf("unreachable: %d %q, want %q", r.code, r.stderr, want)
	}
}

func TestLogsCommand(t *testing.T) {
	sock, dir := serve(t, samplePods()...)
	t.Setenv("MINIPOD_SOCKET", sock)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("default_web_nginx.log", "GET / 200\n")
	write("prod_api_proxy.log", "proxy ready\n")

	if r := runCLI(t, "", "logs", "web"); r.code != 0 || r.stdout != "GET / 200\n" {
		t.Errorf("logs web: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", "logs", "prod/api", "-c", "proxy"); r.code != 0 || r.stdout != "proxy ready\n" {
		t.Errorf("logs prod/api -c proxy: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", "logs", "api", "proxy"); r.code != 0 || r.stdout != "proxy ready\n" {
		t.Errorf("logs api proxy: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r := runCLI(t, "", "logs", "prod/api")
	if want := "Error: a container name must be specified for pod prod/api, choose one of: [server proxy] or one of the init containers: [migrate]\n"; r.code != 1 || r.stderr != want {
		t.Errorf("logs without -c: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "logs", "web", "-c", "db"); r.code != 1 || r.stderr != "Error: container db is not valid for pod web\n" {
		t.Errorf("logs bad container: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "logs", "ghost"); r.code != 1 || r.stderr != "Error: pod \"ghost\" not found\n" {
		t.Errorf("logs ghost: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "logs", "prod/api", "-c", "server"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("logs of a container without a log file: %d %q", r.code, r.stderr)
	}
}

func TestExecCommand(t *testing.T) {
	sock, _ := serve(t, samplePods()...)
	t.Setenv("MINIPOD_SOCKET", sock)

	r := runCLI(t, "hello\nworld\n", "exec", "-i", "web", "--", "cat")
	if r.code != 0 || r.stdout != "hello\nworld\n" || r.stderr != "" {
		t.Errorf("exec -i cat: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Without -i stdin is not forwarded.
	if r := runCLI(t, "ignored", "exec", "web", "--", "cat"); r.code != 0 || r.stdout != "" {
		t.Errorf("exec cat without -i: %d %q", r.code, r.stdout)
	}

	r = runCLI(t, "", "exec", "prod/api", "-c", "proxy", "--", "sh", "-c", "exit 3")
	if r.code != 3 || r.stdout != "proxy in prod/api tty=false: sh -c exit 3\n" || r.stderr != "warning: oops\n" {
		t.Errorf("exec exit 3: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// -it with a non-terminal stdin falls back like kubectl; the command's flags stay its own.
	r = runCLI(t, "", "exec", "-it", "api", "sh", "-c", "-x")
	if r.code != 3 || !strings.HasPrefix(r.stderr, "Defaulted container \"server\" out of: server, proxy, migrate (init)\nUnable to use a TTY") ||
		r.stdout != "server in prod/api tty=false: sh -c -x\n" {
		t.Errorf("exec -it: %d %q %q", r.code, r.stdout, r.stderr)
	}

	if r := runCLI(t, "", "exec", "web", "--", "nope"); r.code != 1 || !strings.Contains(r.stderr, "executable file not found") {
		t.Errorf("exec nope: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "exec", "web"); r.code != 1 || r.stderr != "Error: you must specify at least one command for the container\n" {
		t.Errorf("exec without command: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "exec", "ghost", "--", "cat"); r.code != 1 || r.stderr != "Error: pod \"ghost\" not found\n" {
		t.Errorf("exec ghost: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "exec", "web", "-c", "db", "--", "cat"); r.code != 1 || r.stderr != "Error: container db is not valid for pod web\n" {
		t.Errorf("exec bad container: %d %q", r.code, r.stderr)
	}
}

func TestUsageAndBadArgs(t *testing.T) {
	if r := runCLI(t, "", "--help"); r.code != 0 || !strings.Contains(r.stdout, "minipodctl status") {
		t.Errorf("--help: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, ""); r.code != 1 || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no args: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "frobnicate"); r.code != 1 || !strings.HasPrefix(r.stderr, "Error: unknown command \"frobnicate\"") {
		t.Errorf("unknown command: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "status", "--bogus"); r.code != 1 || !strings.HasPrefix(r.stderr, "Error: unknown flag: --bogus") {
		t.Errorf("unknown flag: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "status", "-o"); r.code != 1 || !strings.HasPrefix(r.stderr, "Error: flag needs an argument: -o") {
		t.Errorf("missing value: %d %q", r.code, r.stderr)
	}
}

func TestParseArgs(t *testing.T) {
	defs := []flagDef{{long: "container", short: 'c', value: true}, {long: "stdin", short: 'i'}, {long: "tty", short: 't'}, {long: "output", short: 'o', value: true}}
	tests := []struct {
		args       []string
		max        int
		values     map[string]string
		bools      map[string]bool
		positional []string
		rest       []string
	}{
		{[]string{"web", "-o", "json"}, 0, map[string]string{"output": "json"}, map[string]bool{}, []string{"web"}, nil},
		{[]string{"-ojson", "web"}, 0, map[string]string{"output": "json"}, map[string]bool{}, []string{"web"}, nil},
		{[]string{"--output=yaml", "web"}, 0, map[string]string{"output": "yaml"}, map[string]bool{}, []string{"web"}, nil},
		{[]string{"-it", "web", "-c", "app", "--", "ls", "-l"}, 1, map[string]string{"container": "app"}, map[string]bool{"stdin": true, "tty": true}, []string{"web"}, []string{"ls", "-l"}},
		{[]string{"web", "-ic=app", "ls", "-l"}, 1, map[string]string{"container": "app"}, map[string]bool{"stdin": true}, []string{"web"}, []string{"ls", "-l"}},
		{[]string{"--tty=false", "web"}, 1, map[string]string{}, map[string]bool{"tty": false}, []string{"web"}, nil},
	}
	for _, tc := range tests {
		p, err := parseArgs(tc.args, defs, tc.max)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(p.values, tc.values) || !reflect.DeepEqual(p.bools, tc.bools) ||
			!reflect.DeepEqual(p.positional, tc.positional) || !reflect.DeepEqual(p.rest, tc.rest) {
			t.Errorf("%v: got values %v bools %v positional %v rest %v", tc.args, p.values, p.bools, p.positional, p.rest)
		}
	}
}
