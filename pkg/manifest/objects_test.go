package manifest

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const objectsYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data:
  mode: fast
binaryData:
  blob: AAEC
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: prod}
data:
  user: YWRtaW4=
  password: b2xk
stringData:
  password: new
  extra: x
`

// ConfigMaps and Secrets are prepared as the API server prepares them: stringData merged into
// data and winning over it, the type defaulted, the namespace defaulted.
func TestLoadFileObjects(t *testing.T) {
	f, err := LoadFile("/m/a.yaml", []byte(objectsYAML+"---\n"+podYAML))
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if len(f.Pods) != 1 || len(f.ConfigMaps) != 1 || len(f.Secrets) != 1 || !f.Objects() {
		t.Fatalf("LoadFile: %d pods, %d configMaps, %d secrets; want one each", len(f.Pods), len(f.ConfigMaps), len(f.Secrets))
	}
	cm, s := f.ConfigMaps[0], f.Secrets[0]
	if cm.Namespace != "default" || cm.Data["mode"] != "fast" || string(cm.BinaryData["blob"]) != "\x00\x01\x02" {
		t.Errorf("configMap: namespace %q data %v binaryData %v", cm.Namespace, cm.Data, cm.BinaryData)
	}
	got := map[string]string{}
	for k, v := range s.Data {
		got[k] = string(v)
	}
	if s.Namespace != "prod" || s.Type != "Opaque" || s.StringData != nil || len(got) != 3 || got["user"] != "admin" || got["password"] != "new" || got["extra"] != "x" {
		t.Errorf("secret: namespace %q type %q stringData %v data %v", s.Namespace, s.Type, s.StringData, got)
	}
	if f.Pods[0].Name != "web" {
		t.Errorf("pod: %s", f.Pods[0].Name)
	}
}

func TestLoadFileObjectErrors(t *testing.T) {
	big := base64.StdEncoding.EncodeToString(make([]byte, 600<<10))
	tests := []struct {
		name, in, want, obj string
	}{
		{"bad data key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {'a b': x}\n",
			`ConfigMap app: data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`, "ConfigMap default/app"},
		{"bad binaryData key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\nbinaryData: {'..': AA==}\n", `binaryData[..]: Invalid value: "..": must not be '..'`, ""},
		{"key in data and binaryData", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: x}\nbinaryData: {k: AA==}\n",
			`ConfigMap app: data[k]: Invalid value: "k": duplicate of key present in binaryData`, ""},
		{"configMap too big", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\nbinaryData: {a: " + big + "}\ndata: {b: '" + strings.Repeat("x", 500<<10) + "'}\n",
			"file is too large", ""},
		{"configMap without a name", "apiVersion: v1\nkind: ConfigMap\ndata: {k: x}\n", "ConfigMap: metadata.name: Required value", ""},
		{"configMap bad name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: App}\n", `ConfigMap App: metadata.name: Invalid value: "App"`, ""},
		{"secret bad stringData key", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {'a/b': x}\n", `Secret db: data[a/b]: Invalid value: "a/b"`, "Secret default/db"},
		{"tls secret without key", "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\nstringData: {tls.crt: x}\n", "Secret tls: data[tls.key]: Required value", ""},
		{"dockerconfigjson not json", "apiVersion: v1\nkind: Secret\nmetadata: {name: reg}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: 'hunter2'}\n",
			"data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\"", ""},
		{"basic-auth without both", "apiVersion: v1\nkind: Secret\nmetadata: {name: b}\ntype: kubernetes.io/basic-auth\n", "data[username]: Required value; data[password]: Required value", ""},
		{"ssh-auth empty", "apiVersion: v1\nkind: Secret\nmetadata: {name: b}\ntype: kubernetes.io/ssh-auth\nstringData: {ssh-privatekey: ''}\n", "data[ssh-privatekey]: Required value", ""},
		{"service account token", "apiVersion: v1\nkind: Secret\nmetadata: {name: b}\ntype: kubernetes.io/service-account-token\n", "metadata.annotations[kubernetes.io/service-account.name]: Required value", ""},
		{"same configMap twice", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\n",
			"document 2 at line 5: metadata.name: Duplicate value: ConfigMap default/app is also defined by document 1 at line 1 of this file", ""},
		{"a configMap and a secret may share a name", "", "", ""},
		{"bad secret in second document", podYAML + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: 'x_y'}\n", "document 2 at line 15: Secret x_y: metadata.name: Invalid value", "Secret default/x_y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == "" {
				in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: app}\n"
				if _, err := LoadFile("/m/x.yaml", []byte(in)); err != nil {
					t.Fatalf("LoadFile: %v", err)
				}
				return
			}
			f, err := LoadFile("/m/x.yaml", []byte(tt.in))
			var me *Error
			if !errors.As(err, &me) || f != nil {
				t.Fatalf("LoadFile: got %v %v, want *Error", f, err)
			}
			if me.Reason != ReasonInvalid || !strings.Contains(me.Message, tt.want) {
				t.Fatalf("LoadFile: got %s %q, want it to contain %q", me.Reason, me.Message, tt.want)
			}
			if got := me.Kind + " " + me.Namespace + "/" + me.Name; tt.obj != "" && got != tt.obj {
				t.Fatalf("LoadFile: error names %q, want %q", got, tt.obj)
			}
			if strings.Contains(me.Message, "hunter2") {
				t.Fatalf("LoadFile: the message shows a secret's value: %q", me.Message)
			}
		})
	}
}

// The size limit is the API server's, on the values together; the file limit comes first for
// a file, so it is checked on a ConfigMap built here.
func TestValidateObjectSize(t *testing.T) {
	f, err := LoadFile("/m/x.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: app}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cm, s := f.ConfigMaps[0], f.Secrets[0]
	cm.Data = map[string]string{"a": strings.Repeat("x", MaxObjectSize/2)}
	cm.BinaryData = map[string][]byte{"b": make([]byte, MaxObjectSize/2)}
	if errs := ValidateConfigMap(cm); len(errs) != 0 {
		t.Errorf("configMap of exactly the limit: %v", errs)
	}
	cm.BinaryData["c"] = []byte{1}
	if errs := ValidateConfigMap(cm); len(errs) != 1 || !strings.Contains(errs[0].Error(), "Too long: may not be more than 1048576 bytes") {
		t.Errorf("configMap over the limit: %v", errs)
	}
	s.Data = map[string][]byte{"a": make([]byte, MaxObjectSize+1)}
	if errs := ValidateSecret(s); len(errs) != 1 || !strings.Contains(errs[0].Error(), "data: Too long") {
		t.Errorf("secret over the limit: %v", errs)
	}
}

// An immutable object's content may not change, nor may it become mutable; a mutable one or a
// new one may change as it likes.
func TestCheckUpdate(t *testing.T) {
	load := func(s string) *File {
		t.Helper()
		f, err := LoadFile("/m/x.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	cm := func(immutable, data string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n" + immutable + "data: {k: " + data + "}\n"
	}
	sec := func(immutable, data string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n" + immutable + "stringData: {k: " + data + "}\n"
	}
	const imm = "immutable: true\n"
	tests := []struct {
		name, old, new, want string
	}{
		{"mutable configMap changes", cm("", "a"), cm("", "b"), ""},
		{"immutable configMap unchanged", cm(imm, "a"), pod0 + "---\n" + cm(imm, "a"), ""},
		{"immutable configMap changes", cm(imm, "a"), pod0 + "---\n" + cm(imm, "b"), "document 2 at line 7: ConfigMap app: data: Forbidden: field is immutable when `immutable` is set"},
		{"immutable configMap made mutable", cm(imm, "a"), cm("immutable: false\n", "a"), "ConfigMap app: immutable: Forbidden: field is immutable when `immutable` is set"},
		{"immutable configMap renamed", cm(imm, "a"), strings.Replace(cm(imm, "b"), "name: app", "name: app2", 1), ""},
		{"configMap made immutable", cm("", "a"), cm(imm, "b"), ""},
		{"immutable binaryData changes", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\nimmutable: true\nbinaryData: {k: AA==}\n",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\nimmutable: true\nbinaryData: {k: AQ==}\n", "ConfigMap app: binaryData: Forbidden"},
		{"immutable secret changes through stringData", sec(imm, "a"), sec(imm, "b"), "Secret db: data: Forbidden: field is immutable when `immutable` is set"},
		{"immutable secret unchanged", sec(imm, "a"), sec(imm, "a"), ""},
		{"immutable secret removed", sec(imm, "a"), pod0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUpdate(load(tt.old), load(tt.new))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckUpdate: %v", err)
				}
				return
			}
			var me *Error
			if !errors.As(err, &me) || me.Message != tt.want && !strings.HasSuffix(tt.want, "Forbidden") || !strings.Contains(me.Message, tt.want) {
				t.Fatalf("CheckUpdate: got %v, want %q", err, tt.want)
			}
		})
	}
	if err := CheckUpdate(nil, load(cm(imm, "a"))); err != nil {
		t.Fatalf("CheckUpdate of a new file: %v", err)
	}
}

const pod0 = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox}]\n"

func TestReferences(t *testing.T) {
	f, err := LoadFile("/m/x.yaml", []byte(`apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: i
    image: busybox
    env: [{name: A, valueFrom: {configMapKeyRef: {name: init-cm, key: k}}}]
  containers:
  - name: c
    image: busybox
    envFrom: [{configMapRef: {name: env-cm}}, {secretRef: {name: env-sec}}]
    env:
    - {name: B, valueFrom: {secretKeyRef: {name: key-sec, key: k}}}
    - {name: C, valueFrom: {configMapKeyRef: {name: vol-cm, key: k}}}
    - {name: D, value: plain}
  volumes:
  - {name: a, configMap: {name: vol-cm}}
  - {name: b, secret: {secretName: vol-sec}}
  - {name: c, projected: {sources: [{configMap: {name: proj-cm}}, {secret: {name: proj-sec}}, {downwardAPI: {items: [{path: podname, fieldRef: {fieldPath: metadata.name}}]}}]}}
  - {name: d, emptyDir: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	cms, secs := References(f.Pods[0])
	if got, want := strings.Join(cms, ","), "vol-cm,proj-cm,init-cm,env-cm"; got != want {
		t.Errorf("configMaps %s, want %s", got, want)
	}
	if got, want := strings.Join(secs, ","), "vol-sec,proj-sec,env-sec,key-sec"; got != want {
		t.Errorf("secrets %s, want %s", got, want)
	}
}
