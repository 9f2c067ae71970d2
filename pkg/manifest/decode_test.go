package manifest

import (
	"errors"
	"strings"
	"testing"
)

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: prod
  labels:
    app: web
spec:
  containers:
  - name: server
    image: busybox:1.36
    ports:
    - containerPort: 8080
`

// The same pod as podYAML, as JSON with other key order and spacing.
const podJSON = `{"spec": {"containers": [{"ports": [{"containerPort": 8080}], "image": "busybox:1.36", "name": "server"}]},
 "metadata": {"labels": {"app": "web"}, "namespace": "prod", "name": "web"},
	"kind": "Pod", "apiVersion": "v1"}`

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"yaml", podYAML, ""},
		{"json", podJSON, ""},
		{"leading separator", "---\n" + podYAML, ""},
		{"trailing separator and comment", podYAML + "---\n# nothing here\n", ""},
		{"windows line ends", strings.ReplaceAll(podYAML, "\n", "\r\n"), ""},
		{"utf-8 bom", "\xEF\xBB\xBF" + podYAML, ""},
		{"unknown field tolerated", podYAML + "  bogus: 1\n", ""},
		{"deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n", "kind: Deployment is not supported: minipod runs v1 Pods, ConfigMaps and Secrets; use the Deployment's pod template (spec.template) as a Pod"},
		{"wrong apiVersion", strings.Replace(podYAML, "apiVersion: v1", "apiVersion: v2", 1), "apiVersion: v2 is not supported: only v1 Pod"},
		{"missing apiVersion", strings.Replace(podYAML, "apiVersion: v1\n", "", 1), "apiVersion: Required value"},
		{"missing kind", strings.Replace(podYAML, "kind: Pod\n", "", 1), "kind: Required value"},
		{"kind is case sensitive", strings.Replace(podYAML, "kind: Pod", "kind: pod", 1), "kind: pod is not supported"},
		{"kind not a string", strings.Replace(podYAML, "kind: Pod", "kind: [Pod]", 1), "kind: Invalid value"},
		{"two documents", podYAML + "---\n" + podYAML, "the file holds 2 pods: expected exactly one"},
		{"two json documents", podJSON + "\n" + podJSON, "unexpected content after the JSON object at line 4"},
		{"json with trailing junk", podJSON + "]", "unexpected content after the JSON object"},
		{"yaml flow mapping with trailing junk", "{apiVersion: v1, kind: Pod}\nmetadata: {}\n", "unexpected content after the end of the YAML document: yaml: line 1"},
		{"content after end marker", podYAML + "...\nmore: 1\n", "unexpected content after the end of the YAML document"},
		{"end marker", podYAML + "...\n", ""},
		{"leading separator only", "---\n", "no YAML document"},
		{"comments only", "# just a comment\n---\n# another\n", "no YAML document"},
		{"empty file", "", "empty file"},
		{"whitespace only", " \n\t\n", "empty file"},
		{"binary junk", "\x7fELF\x02\x01\x01\x00\x00", "binary data"},
		{"not utf-8", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: caf\xe9\n", "not UTF-8 text: invalid byte 0xe9 at offset 46"},
		{"utf-16", "\xff\xfea\x00p\x00", "UTF-16"},
		{"broken yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n spec: [\n", "yaml: line 4:"},
		{"broken yaml in later document keeps file line", "# header\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n", "yaml: line 6:"},
		{"tab indentation", "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n", "yaml: line"},
		{"a list", "- a\n- b\n", "the document is a list, not an object"},
		{"a scalar", "hello\n", "the document is a string, not an object"},
		{"wrong type", podYAML + "  restartPolicy: [x]\n", "cannot unmarshal array"},
		{"too large", strings.Repeat("#", MaxFileSize+1), "file is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := Decode([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: got error %q, want success", err)
				}
				if pod.Name != "web" || len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Image != "busybox:1.36" {
					t.Fatalf("Decode: got name %q containers %+v", pod.Name, pod.Spec.Containers)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode: got success, want error containing %q", tt.wantErr)
			}
			var me *Error
			if !errors.As(err, &me) || me.Reason != ReasonInvalid {
				t.Fatalf("Decode: got %T %v, want *Error with reason %s", err, err, ReasonInvalid)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode: got error %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Decode: message %q spans lines", err)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"clean yaml", podYAML, ""},
		{"clean json", podJSON, ""},
		{"unknown field", podYAML + "    imagePullPolcy: Always\n", `unknown field "spec.containers[0].imagePullPolcy"`},
		{"wrong case is unknown", podYAML + "    Image: x\n", `unknown field "spec.containers[0].Image"`},
		{"duplicate yaml key", strings.Replace(podYAML, "  name: web\n", "  name: web\n  name: web2\n", 1), `line 5: key "name" already set in map`},
		{"duplicate json key", strings.Replace(podJSON, `"name": "web"`, `"name": "web", "name": "x"`, 1), `key "name" already set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeStrict([]byte(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("DecodeStrict: got error %q, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("DecodeStrict: got error %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				// The lenient decoder takes the same input.
				if _, err := Decode([]byte(tt.in)); err != nil {
					t.Fatalf("Decode: got error %q, want success", err)
				}
			}
		})
	}
}

func TestPeekName(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		wantNamespace string
		wantName      string
	}{
		{"valid", podYAML, "prod", "web"},
		{"json", podJSON, "prod", "web"},
		{"invalid spec", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nocontainers\nspec:\n  containers: []\n", "", "nocontainers"},
		{"broken yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken # the name\n  namespace: 'ops'\n spec: [\n", "ops", "broken"},
		{"broken yaml, nested name ignored", "metadata:\n  labels:\n    name: nested\n  name: \"top\"\nspec: [\n", "", "top"},
		{"broken yaml, name outside metadata", "spec:\n  name: x\nmetadata: [\n", "", ""},
		{"no name", "apiVersion: v1\nkind: Pod\n", "", ""},
		{"name not a string", "metadata:\n  name: {a: b}\n", "", ""},
		{"binary", "\x00\x01", "", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, name := PeekName([]byte(tt.in))
			if ns != tt.wantNamespace || name != tt.wantName {
				t.Fatalf("PeekName: got %q/%q, want %q/%q", ns, name, tt.wantNamespace, tt.wantName)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	if err := CheckSize(MaxFileSize); err != nil {
		t.Fatalf("CheckSize(MaxFileSize): got %v, want nil", err)
	}
	err := CheckSize(MaxFileSize + 1)
	var me *Error
	if !errors.As(err, &me) || me.Reason != ReasonInvalid || !strings.Contains(me.Message, "too large") {
		t.Fatalf("CheckSize(MaxFileSize+1): got %v, want *Error about size", err)
	}
}

func TestDecodeAll(t *testing.T) {
	api := strings.Replace(podYAML, "name: web", "name: api", 1)
	tests := []struct {
		name      string
		in        string
		strict    bool
		wantNames []string // on success
		wantErr   string   // substring; "" means success
		wantObj   string   // namespace/name the error names
	}{
		{"one pod", podYAML, false, []string{"web"}, "", ""},
		{"two documents", podYAML + "---\n" + api, false, []string{"web", "api"}, "", ""},
		{"empty documents between", "---\n" + podYAML + "---\n# nothing\n---\n" + api + "---\n", false, []string{"web", "api"}, "", ""},
		{"json list", `{"apiVersion": "v1", "kind": "List", "items": [` + podJSON + `]}`, false, []string{"web"}, "", ""},
		{"yaml list and a pod", "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n---\n" + podYAML, false, []string{"a", "b", "web"}, "", ""},
		{"empty list", "apiVersion: v1\nkind: List\nitems: []\n", false, nil, "the file holds only an empty List", ""},
		{"list of another version", "apiVersion: v2\nkind: List\nitems: []\n", false, nil, `apiVersion: "v2" is not supported for kind List`, ""},
		{"list in a list", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, metadata: {name: l}, items: []}\n", false, nil, "items[0]: kind: List: a List may not hold another List", "/l"},
		{"list item not an object", "apiVersion: v1\nkind: List\nitems: [3]\n", false, nil, "items[0]: the item is a number, not an object", ""},
		{"list items not a list", "apiVersion: v1\nkind: List\nitems: {a: b}\n", false, nil, "items: Invalid value", ""},
		{"deployment in second document", podYAML + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: ops\n", false, nil,
			"document 2 at line 15: kind: Deployment is not supported: minipod runs v1 Pods, ConfigMaps and Secrets; use the Deployment's pod template (spec.template) as a Pod", "ops/d"},
		{"cronjob", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\n", false, nil, "use the CronJob's pod template (spec.jobTemplate.spec.template) as a Pod", "/c"},
		{"service", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", false, nil, "kind: Service is not supported: minipod runs v1 Pods", "/s"},
		{"service message", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", false, nil, "kind: Service is not supported: minipod runs v1 Pods, ConfigMaps and Secrets", "/s"},
		{"configmap and secret beside a pod", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n" + podYAML, false, []string{"web"}, "", ""},
		{"configmap of another version", "apiVersion: v2\nkind: ConfigMap\nmetadata: {name: c}\n", false, nil, "apiVersion: v2 is not supported: only v1 ConfigMap", "/c"},
		{"strict: stringData in a configmap", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nstringData: {a: b}\n", true, nil, `strict decoding error: unknown field "stringData"`, "/c"},
		{"secret data not base64", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: '!!'}\n", false, nil, "illegal base64 data", "/s"},
		{"item of another kind", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n", false, nil, "items[1]: kind: Service is not supported", "/s"},
		{"broken yaml in second document names it", podYAML + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n spec: [\n", false, nil, "yaml: line 18:", "/broken"},
		{"scalar document", podYAML + "---\nhello\n", false, nil, "document 2 at line 15: the document is a string", ""},
		{"strict: unknown field in second document", podYAML + "---\n" + api + "    imagePullPolcy: Always\n", true, nil, `document 2 at line 15: strict decoding error: unknown field "spec.containers[0].imagePullPolcy"`, "prod/api"},
		{"strict: unknown field of a list", "apiVersion: v1\nkind: List\nitemz: []\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n", true, nil, `unknown field "itemz"`, ""},
		{"lenient: unknown field of a list", "apiVersion: v1\nkind: List\nitemz: []\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n", false, []string{"a"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decode := DecodeAll
			if tt.strict {
				decode = DecodeAllStrict
			}
			pods, err := decode([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeAll: got error %q, want success", err)
				}
				var names []string
				for _, p := range pods {
					names = append(names, p.Name)
				}
				if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
					t.Fatalf("DecodeAll: got pods %v, want %v", names, tt.wantNames)
				}
				return
			}
			var me *Error
			if !errors.As(err, &me) || me.Reason != ReasonInvalid {
				t.Fatalf("DecodeAll: got %T %v, want *Error with reason %s", err, err, ReasonInvalid)
			}
			if !strings.Contains(me.Message, tt.wantErr) {
				t.Fatalf("DecodeAll: got error %q, want it to contain %q", me.Message, tt.wantErr)
			}
			if got := me.Namespace + "/" + me.Name; tt.wantObj != "" && got != tt.wantObj {
				t.Fatalf("DecodeAll: error names %q, want %q", got, tt.wantObj)
			}
		})
	}
}

func TestLoadAll(t *testing.T) {
	const path = "/etc/minipod/manifests/two.yaml"
	api := strings.Replace(podYAML, "name: web", "name: api", 1)
	pods, err := LoadAll(path, []byte(podYAML+"---\n"+api))
	if err != nil || len(pods) != 2 {
		t.Fatalf("LoadAll: got %d pods, error %v; want 2 pods", len(pods), err)
	}
	for _, p := range pods {
		if p.Annotations[AnnotationManifest] != path || p.UID == "" || p.Spec.RestartPolicy != "Always" {
			t.Errorf("pod %s: manifest %q uid %q restartPolicy %q", p.Name, p.Annotations[AnnotationManifest], p.UID, p.Spec.RestartPolicy)
		}
	}
	if pods[0].UID == pods[1].UID {
		t.Fatalf("two pods of one file share the uid %s", pods[0].UID)
	}
	// Editing one pod of a file leaves the other's identity alone.
	again, err := LoadAll(path, []byte(podYAML+"---\n"+api+"    command: [sleep, '1']\n"))
	if err != nil || again[0].UID != pods[0].UID || again[1].UID == pods[1].UID {
		t.Fatalf("LoadAll after editing the second pod: error %v; uids %s %s -> %s %s", err, pods[0].UID, pods[1].UID, again[0].UID, again[1].UID)
	}
	// An invalid pod makes the whole file an error that names the pod and its document.
	_, err = LoadAll(path, []byte(podYAML+"---\n"+strings.Replace(api, "    image: busybox:1.36\n", "", 1)))
	var me *Error
	if !errors.As(err, &me) || me.Name != "api" || me.Namespace != "prod" || me.Message != "document 2 at line 15: spec.containers[0].image: Required value" {
		t.Fatalf("LoadAll with an invalid second pod: got %#v", err)
	}
}
