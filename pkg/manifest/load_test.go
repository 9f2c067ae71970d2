package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	const path = "/etc/minipod/manifests/web.yaml"
	pod, err := Load(path, []byte(podYAML))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	decoded, err := Decode([]byte(podYAML))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	hash := Hash(path, decoded)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(hash) {
		t.Fatalf("Hash: got %q, want 32 hex characters", hash)
	}
	checks := []struct{ what, got, want string }{
		{"uid", string(pod.UID), hash},
		{"annotation " + AnnotationConfigHash, pod.Annotations[AnnotationConfigHash], hash},
		{"annotation " + AnnotationConfigSource, pod.Annotations[AnnotationConfigSource], "file"},
		{"annotation " + AnnotationManifest, pod.Annotations[AnnotationManifest], path},
		{"namespace", pod.Namespace, "prod"},
		{"defaults applied", string(pod.Spec.RestartPolicy), "Always"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"decode problem", "kind: Deployment\napiVersion: apps/v1\n", "kind: Deployment is not supported: minipod runs v1 Pods, ConfigMaps and Secrets; use the Deployment's pod template (spec.template) as a Pod"},
		{"two pods", podYAML + "---\n" + strings.Replace(podYAML, "name: web", "name: api", 1), "the file holds 2 pods: expected exactly one"},
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nocontainers\nspec:\n  containers: []\n", "spec.containers: Required value"},
		{"all field errors joined in order", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  restartPolicy: Sometimes\n  containers:\n  - name: a\n  - name: a\n    image: i\n",
			`spec.containers[0].image: Required value; spec.containers[1].name: Duplicate value: "a"; spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`},
		{"too large", strings.Repeat(" ", MaxFileSize+1), "file is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := Load("/m/x.yaml", []byte(tt.in))
			var me *Error
			if !errors.As(err, &me) || pod != nil {
				t.Fatalf("Load: got pod %v error %v, want *Error", pod != nil, err)
			}
			if me.Reason != ReasonInvalid || !strings.Contains(me.Message, tt.want) {
				t.Fatalf("Load: got %s %q, want %s containing %q", me.Reason, me.Message, ReasonInvalid, tt.want)
			}
		})
	}
}

func TestHash(t *testing.T) {
	const path = "/m/web.yaml"
	load := func(path, data string) string {
		t.Helper()
		pod, err := Load(path, []byte(data))
		if err != nil {
			t.Fatalf("Load(%s): %v", path, err)
		}
		return string(pod.UID)
	}
	base := load(path, podYAML)
	reordered := `# the same pod, written differently
kind: Pod
spec:
  containers:
  - ports: [{containerPort: 8080}]
    image: "busybox:1.36"
    name: server
metadata: {namespace: prod, labels: {app: web}, name: web}
apiVersion: v1
`
	tests := []struct {
		name     string
		path     string
		data     string
		wantSame bool
	}{
		{"same content", path, podYAML, true},
		{"key order, flow style, quoting", path, reordered, true},
		{"json", path, podJSON, true},
		{"explicit empty values", path, podYAML + "  volumes: []\n  securityContext: {}\n", true},
		{"unknown field (dropped like the API server)", path, podYAML + "  bogus: 1\n", true},
		{"status and uid (owned by the server)", path, podYAML + "status:\n  phase: Running\n", true},
		{"explicit default changes the hash", path, podYAML + "  restartPolicy: Always\n", false},
		{"different path", "/m/other.yaml", podYAML, false},
		{"changed image", path, strings.Replace(podYAML, "busybox:1.36", "busybox:1.37", 1), false},
		{"changed label", path, strings.Replace(podYAML, "app: web", "app: web2", 1), false},
		{"added env", path, podYAML + "    env: [{name: A, value: b}]\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := load(tt.path, tt.data)
			if (got == base) != tt.wantSame {
				t.Fatalf("hash %s vs base %s: same = %v, want %v", got, base, got == base, tt.wantSame)
			}
		})
	}
}

// TestHashPinned guards against a dependency upgrade or refactor silently changing every pod's
// UID, which would restart every pod on the next daemon upgrade.
func TestHashPinned(t *testing.T) {
	pod, err := Decode([]byte(podYAML))
	if err != nil {
		t.Fatal(err)
	}
	const want = "47d032ed8fcdb05fcdc7d81d0989ad51"
	if got := Hash("/etc/minipod/manifests/web.yaml", pod); got != want {
		t.Fatalf("Hash: got %s, want %s; if this change is deliberate, every running pod will be restarted", got, want)
	}
}

func TestHashNil(t *testing.T) {
	if Hash("/x", nil) == "" {
		t.Fatal("Hash(nil) is empty")
	}
}

// The example manifests: every file in testdata/good loads, every file in testdata/bad fails
// with the message in its first line, `# want: ...`.
func TestTestdata(t *testing.T) {
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no files in testdata/%s: %v", dir, err)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				_, err = LoadAll(f, data)
				if dir == "good" {
					if err != nil {
						t.Fatalf("Load: got %v, want success", err)
					}
					return
				}
				first, _, _ := strings.Cut(string(data), "\n")
				want, ok := strings.CutPrefix(first, "# want: ")
				if !ok {
					t.Fatalf("first line %q is not `# want: ...`", first)
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Load: got %v, want error containing %q", err, want)
				}
			})
		}
	}
}
