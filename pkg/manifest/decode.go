package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	goyaml "go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"
)

// The Kubernetes JSON serializer rather than encoding/json: field names are case-sensitive there
// (`Image:` is an unknown field, not `image`), and its strict mode reports unknown and duplicate
// fields with their paths, exactly as `kubectl apply --validate=strict` would.
var (
	scheme       = newScheme()
	lenientCodec = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{})
	strictCodec  = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Strict: true})
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err) // static registration; cannot fail at run time
	}
	return s
}

// Decode parses the bytes of a file that holds exactly one Pod. Unknown fields are dropped, as
// the API server drops them; DecodeStrict reports them instead. Errors are *Error.
func Decode(data []byte) (*corev1.Pod, error) { return decodeOne(data, false) }

// DecodeStrict is Decode, but unknown or duplicate fields are errors naming the field.
func DecodeStrict(data []byte) (*corev1.Pod, error) { return decodeOne(data, true) }

// DecodeAll parses one file's bytes (YAML or JSON) into its Pods, in file order; DecodeFile
// tells what else the file holds.
func DecodeAll(data []byte) ([]*corev1.Pod, error) { return decodePods(data, false) }

// DecodeAllStrict is DecodeAll, but unknown or duplicate fields are errors naming the field.
func DecodeAllStrict(data []byte) ([]*corev1.Pod, error) { return decodePods(data, true) }

// DecodeFile parses one file's bytes (YAML or JSON) into its objects, each kind in file order.
// The file holds one or more YAML documents separated by `---` lines, each a v1 Pod, ConfigMap
// or Secret, or a v1 List of them, as `kubectl apply -f` takes it. A file is used whole or not
// at all: a document of another kind, or one that does not decode, makes the file an error.
// Errors are *Error; when the file holds more than one object the message starts with the
// document (and item) at fault, and the error names that object (Kind, Namespace, Name) when
// its name could be read. Nothing is defaulted or validated: LoadFile does that.
func DecodeFile(data []byte) (*File, error) { return decodeFile(data, false) }

// DecodeFileStrict is DecodeFile, but unknown or duplicate fields are errors naming the field.
func DecodeFileStrict(data []byte) (*File, error) { return decodeFile(data, true) }

func decodeOne(data []byte, strict bool) (*corev1.Pod, error) {
	pods, err := decodePods(data, strict)
	if err != nil {
		return nil, err
	}
	if len(pods) != 1 {
		return nil, invalidf("the file holds %d pods: expected exactly one", len(pods))
	}
	return pods[0], nil
}

func decodePods(data []byte, strict bool) ([]*corev1.Pod, error) {
	f, err := decodeFile(data, strict)
	if err != nil {
		return nil, err
	}
	return f.Pods, nil
}

func decodeFile(data []byte, strict bool) (*File, error) {
	if err := CheckSize(int64(len(data))); err != nil {
		return nil, err
	}
	objs, err := objects(data, strict)
	if err != nil {
		return nil, err
	}
	codec := lenientCodec
	if strict {
		codec = strictCodec
	}
	f := &File{where: map[string][]object{}}
	for _, o := range objs {
		kind, err := checkTypeMeta(o.js)
		if err != nil {
			return nil, o.fail(err)
		}
		var into runtime.Object
		switch kind {
		case KindConfigMap:
			cm := &corev1.ConfigMap{}
			f.ConfigMaps, into = append(f.ConfigMaps, cm), cm
		case KindSecret:
			sec := &corev1.Secret{}
			f.Secrets, into = append(f.Secrets, sec), sec
		default:
			pod := &corev1.Pod{}
			f.Pods, into = append(f.Pods, pod), pod
		}
		f.where[kind] = append(f.where[kind], o)
		if _, _, err := codec.Decode(o.js, nil, into); err != nil {
			return nil, o.fail(invalidf("%s", tidy(err.Error())))
		}
	}
	f.many = len(objs) > 1
	return f, nil
}

// object is one object of a file: a document, or an item of a v1 List.
type object struct {
	js []byte
	// where names the object in messages ("document 2 at line 14", "items[1]"); "" when it is
	// the file's only object, so that one-pod files read as they always did.
	where string
}

// fail makes err name the object: its place in the file, and its name when it has one.
func (o object) fail(err *Error) *Error {
	e := *err
	if o.where != "" {
		e.Message = o.where + ": " + e.Message
	}
	e.Namespace, e.Name = peekJSON(o.js)
	e.Kind = peekKind(o.js)
	return &e
}

// objects checks that data is text holding at least one non-empty YAML (or JSON) document and
// returns its objects as JSON, the items of a v1 List in its place.
func objects(data []byte, strict bool) ([]object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalidf("empty file: expected a v1 Pod manifest")
	}
	if err := checkText(data); err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	toJSON := yaml.YAMLToJSON
	if strict {
		toJSON = yaml.YAMLToJSONStrict
	}
	type found struct {
		js   []byte
		line int
	}
	var docs []found
	for _, d := range splitDocuments(data) {
		if err := checkJSONTail(d); err != nil {
			return nil, err
		}
		js, err := toJSON(d.data)
		if err != nil {
			e := invalidf("%s", yamlError(err, d.line))
			e.Namespace, e.Name = peekLines(d.data)
			return nil, e
		}
		if err := checkYAMLTail(d); err != nil {
			return nil, err
		}
		if isEmptyJSON(js) {
			continue // blank, comments only, or a bare `---`
		}
		docs = append(docs, found{js, firstLine(d)})
	}
	if len(docs) == 0 {
		return nil, invalidf("no YAML document in the file (only comments or `---`): expected a v1 Pod manifest")
	}
	var objs []object
	for i, d := range docs {
		o := object{js: d.js}
		if len(docs) > 1 {
			o.where = fmt.Sprintf("document %d at line %d", i+1, d.line)
		}
		if d.js[0] != '{' {
			return nil, o.fail(invalidf("the document is %s, not an object: expected a v1 Pod manifest", jsonKind(d.js)))
		}
		items, isList, err := listItems(d.js, strict)
		if err != nil {
			return nil, o.fail(err)
		}
		if !isList {
			objs = append(objs, o)
			continue
		}
		for j, it := range items {
			where := fmt.Sprintf("items[%d]", j)
			if o.where != "" {
				where = o.where + ", " + where
			}
			item := object{js: it, where: where}
			if it[0] != '{' {
				return nil, item.fail(invalidf("the item is %s, not an object: expected a v1 Pod", jsonKind(it)))
			}
			if _, nested, _ := listItems(it, false); nested {
				return nil, item.fail(invalidf("kind: List: a List may not hold another List"))
			}
			objs = append(objs, item)
		}
	}
	if len(objs) == 0 {
		return nil, invalidf("the file holds only an empty List: expected a v1 Pod manifest")
	}
	return objs, nil
}

// firstLine is the 1-based line of a document's first line with content.
func firstLine(d document) int {
	n := d.line + 1
	for _, l := range bytes.SplitAfter(d.data, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return n
		}
		n++
	}
	return d.line + 1
}

// listItems returns the items of js when it is a v1 List (kind List), as `kubectl get -o yaml`
// writes several objects. Strict decoding refuses fields a List does not have.
func listItems(js []byte, strict bool) (items []json.RawMessage, isList bool, err *Error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil {
		return nil, false, nil // checkTypeMeta reports it
	}
	if kind, _ := stringField(top, "kind"); kind != "List" {
		return nil, false, nil
	}
	if v, _ := stringField(top, "apiVersion"); v != "v1" {
		return nil, true, invalidf("apiVersion: %q is not supported for kind List: only v1", v)
	}
	if strict {
		for k := range top {
			switch k {
			case "apiVersion", "kind", "metadata", "items":
			default:
				return nil, true, invalidf("strict decoding error: unknown field %q", k)
			}
		}
	}
	raw, ok := top["items"]
	if !ok || string(raw) == "null" {
		return nil, true, nil
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, true, invalidf("items: Invalid value: must be a list of objects")
	}
	return items, true, nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// checkText rejects what is not a text file with a message a person can act on, instead of the
// YAML parser's "control characters are not allowed".
func checkText(data []byte) error {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return invalidf("the file is UTF-16 encoded: only UTF-8 text is supported")
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return invalidf("the file is not UTF-8 text: invalid byte 0x%02x at offset %d", data[off], off)
	}
	for i, b := range data {
		if (b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f {
			return invalidf("the file contains binary data (byte 0x%02x at offset %d): expected a YAML or JSON text file", b, i)
		}
	}
	return nil
}

type document struct {
	data []byte
	line int // number of lines in the file before this document's first line
}

// splitDocuments splits a YAML stream at `---` lines, keeping every line in place so that the
// YAML parser's line numbers can be mapped back to the file. A separator may carry content after
// it (`--- {a: b}`); the marker is blanked rather than dropped so that the content stays in its
// document, which the apimachinery YAML reader would otherwise merge into the previous one.
func splitDocuments(data []byte) []document {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var docs []document
	cur := document{}
	for i, l := range lines {
		if isSeparator(l) {
			if i > 0 {
				docs = append(docs, cur)
			}
			blank := append([]byte("   "), l[3:]...)
			cur = document{data: blank, line: i}
			continue
		}
		cur.data = append(cur.data, l...)
	}
	return append(docs, cur)
}

// checkJSONTail rejects content after a JSON value. The YAML parser stops after the first flow
// mapping and silently ignores what follows, which would hide a second pod in `{...}{...}`.
func checkJSONTail(d document) error {
	trimmed := bytes.TrimLeft(d.data, " \t\r\n")
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(d.data))
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return nil // not JSON after all (YAML flow style); the YAML parser judges it
	}
	if _, err := dec.Token(); err == io.EOF {
		return nil
	}
	off := int(dec.InputOffset())
	line := d.line + 1 + bytes.Count(d.data[:min(off, len(d.data))], []byte("\n"))
	return invalidf("unexpected content after the JSON object at line %d: separate documents with a `---` line", line)
}

// checkYAMLTail rejects content after the end of a YAML document that the YAML-to-JSON
// conversion would silently drop, such as a block mapping after a root flow mapping or anything
// after a `...` end marker.
func checkYAMLTail(d document) error {
	dec := goyaml.NewDecoder(bytes.NewReader(d.data))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil // toJSON accepted it; nothing more to learn here
	}
	switch err := dec.Decode(&v); {
	case err == io.EOF:
		return nil
	case err != nil:
		return invalidf("unexpected content after the end of the YAML document: %s", yamlError(err, d.line))
	}
	return invalidf("unexpected content after the end of the YAML document: separate documents with a `---` line")
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := line[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

func isEmptyJSON(js []byte) bool {
	s := string(bytes.TrimSpace(js))
	return s == "" || s == "null"
}

func jsonKind(js []byte) string {
	switch js[0] {
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

var yamlLineRE = regexp.MustCompile(`\bline (\d+)`)

// yamlError makes a YAML parser error name the line in the file (not in the document) and fit on
// one line of `minipodctl status`.
func yamlError(err error, offset int) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, convErr := strconv.Atoi(m[len("line "):])
		if convErr != nil {
			return m
		}
		return "line " + strconv.Itoa(n+offset)
	})
	return tidy(msg)
}

// tidy folds a multi-line parser message onto one line.
func tidy(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// podTemplates says where the pod template of a workload kind is, for the message that refuses it.
var podTemplates = map[string]string{
	"Deployment":            "spec.template",
	"ReplicaSet":            "spec.template",
	"StatefulSet":           "spec.template",
	"DaemonSet":             "spec.template",
	"Job":                   "spec.template",
	"ReplicationController": "spec.template",
	"CronJob":               "spec.jobTemplate.spec.template",
}

// The kinds a manifest file may hold.
const (
	KindPod       = "Pod"
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// runs is what minipod runs, for the messages that refuse other kinds.
const runs = "minipod runs v1 Pods, ConfigMaps and Secrets"

// checkTypeMeta insists on a v1 Pod, ConfigMap or Secret before the body is decoded, so that a
// Deployment gets "kind: Deployment is not supported" rather than a confusing error about its
// spec. It returns the kind.
func checkTypeMeta(js []byte) (string, *Error) {
	var top map[string]json.RawMessage // a map keeps key matching case-sensitive
	if err := json.Unmarshal(js, &top); err != nil {
		return "", invalidf("%s", tidy(err.Error()))
	}
	apiVersion, err := stringField(top, "apiVersion")
	if err != nil {
		return "", err
	}
	kind, err := stringField(top, "kind")
	if err != nil {
		return "", err
	}
	switch {
	case kind == "":
		return "", invalidf("kind: Required value: %s", runs)
	case podTemplates[kind] != "":
		return "", invalidf("kind: %s is not supported: %s; use the %s's pod template (%s) as a Pod", kind, runs, kind, podTemplates[kind])
	case kind != KindPod && kind != KindConfigMap && kind != KindSecret:
		return "", invalidf("kind: %s is not supported: %s", kind, runs)
	case apiVersion == "":
		return "", invalidf("apiVersion: Required value: only v1 %s is supported", kind)
	case apiVersion != "v1":
		return "", invalidf("apiVersion: %s is not supported: only v1 %s", apiVersion, kind)
	}
	return kind, nil
}

func stringField(top map[string]json.RawMessage, key string) (string, *Error) {
	raw, ok := top[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidf("%s: Invalid value: %s: must be a string", key, raw)
	}
	return s, nil
}

// PeekName reads metadata.namespace and metadata.name from a file even when it is otherwise
// invalid, so that a broken file can still be listed under its pod's name: the first document
// that is not a ConfigMap or a Secret. It is best effort and returns "" for what it cannot
// find; the namespace is not defaulted.
func PeekName(data []byte) (namespace, name string) {
	if len(data) > MaxFileSize || !utf8.Valid(data) {
		return "", ""
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	for _, d := range splitDocuments(data) {
		js, err := yaml.YAMLToJSON(d.data)
		if err != nil {
			return peekLines(d.data)
		}
		if isEmptyJSON(js) {
			continue
		}
		if k := peekKind(js); k == KindConfigMap || k == KindSecret {
			continue
		}
		return peekJSON(js)
	}
	return "", ""
}

// peekKind reads the kind of one object, best effort.
func peekKind(js []byte) string {
	var obj struct {
		Kind any `json:"kind"`
	}
	if json.Unmarshal(js, &obj) != nil {
		return ""
	}
	k, _ := obj.Kind.(string)
	return k
}

// peekJSON reads metadata.namespace and metadata.name from one object, best effort.
func peekJSON(js []byte) (namespace, name string) {
	var obj struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if json.Unmarshal(js, &obj) != nil {
		return "", ""
	}
	namespace, _ = stringField(obj.Metadata, "namespace")
	name, _ = stringField(obj.Metadata, "name")
	return sane(namespace), sane(name)
}

var (
	metadataLineRE = regexp.MustCompile(`^metadata:\s*(#.*)?$`)
	keyLineRE      = regexp.MustCompile(`^(\s+)(name|namespace):\s*(.*?)\s*$`)
)

// peekLines finds `name:` and `namespace:` directly under a top-level `metadata:` line, for YAML
// that does not parse. It assumes the common block style and gives up on anything else.
func peekLines(data []byte) (namespace, name string) {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	in, indent := false, ""
	for _, l := range lines {
		trimmed := strings.TrimSpace(l)
		if !in {
			in = metadataLineRE.MatchString(l)
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if l[0] != ' ' && l[0] != '\t' {
			break // back at the top level: metadata has ended
		}
		m := keyLineRE.FindStringSubmatch(l)
		lead := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if indent == "" {
			indent = lead
		}
		if m == nil || lead != indent {
			continue
		}
		v := sane(scalar(m[3]))
		if m[2] == "name" && name == "" {
			name = v
		} else if m[2] == "namespace" && namespace == "" {
			namespace = v
		}
	}
	return namespace, name
}

// scalar strips a trailing comment and quotes from a plain or quoted one-line YAML value.
func scalar(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		if end := strings.IndexByte(v[1:], v[0]); end >= 0 {
			return v[1 : end+1]
		}
		return ""
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// sane drops values that cannot be a name (flow collections, anchors, block scalars, very long or
// multi-line strings) so that PeekName never shows junk as a pod name.
func sane(v string) string {
	if v == "" || len(v) > 253 || strings.ContainsAny(v, "{}[]&*|>\n\r\t") {
		return ""
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	return v
}
