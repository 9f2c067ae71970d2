package manifest

import (
	"bytes"
	"encoding/json"
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

// Decode parses one file's bytes (YAML or JSON) into a Pod. It requires apiVersion "v1" and kind
// "Pod" and exactly one non-empty YAML document. Unknown fields are dropped, as the API server
// drops them; DecodeStrict reports them instead. Errors are *Error.
func Decode(data []byte) (*corev1.Pod, error) { return decode(data, false) }

// DecodeStrict is Decode, but unknown or duplicate fields are errors naming the field.
func DecodeStrict(data []byte) (*corev1.Pod, error) { return decode(data, true) }

func decode(data []byte, strict bool) (*corev1.Pod, error) {
	if err := CheckSize(int64(len(data))); err != nil {
		return nil, err
	}
	js, err := oneDocument(data, strict)
	if err != nil {
		return nil, err
	}
	if err := checkTypeMeta(js); err != nil {
		return nil, err
	}
	codec := lenientCodec
	if strict {
		codec = strictCodec
	}
	pod := &corev1.Pod{}
	if _, _, err := codec.Decode(js, nil, pod); err != nil {
		return nil, invalidf("%s", tidy(err.Error()))
	}
	return pod, nil
}

// oneDocument checks that data is text holding exactly one non-empty YAML (or JSON) document and
// returns it as JSON.
func oneDocument(data []byte, strict bool) ([]byte, error) {
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
	var found []byte
	for _, d := range splitDocuments(data) {
		if err := checkJSONTail(d); err != nil {
			return nil, err
		}
		js, err := toJSON(d.data)
		if err != nil {
			return nil, invalidf("%s", yamlError(err, d.line))
		}
		if err := checkYAMLTail(d); err != nil {
			return nil, err
		}
		if isEmptyJSON(js) {
			continue // blank, comments only, or a bare `---`
		}
		if found != nil {
			return nil, invalidf("more than one YAML document: another one starts at line %d; a manifest file holds exactly one pod", d.line+1)
		}
		found = js
	}
	if found == nil {
		return nil, invalidf("no YAML document in the file (only comments or `---`): expected a v1 Pod manifest")
	}
	if found[0] != '{' {
		return nil, invalidf("the document is %s, not an object: expected a v1 Pod manifest", jsonKind(found))
	}
	return found, nil
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
	return invalidf("unexpected content after the JSON object at line %d: a manifest file holds exactly one pod", line)
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
	return invalidf("more than one YAML document: a manifest file holds exactly one pod")
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

// checkTypeMeta insists on a v1 Pod before the body is decoded, so that a Deployment gets
// "kind: Deployment is not supported" rather than a confusing error about its spec.
func checkTypeMeta(js []byte) error {
	var top map[string]json.RawMessage // a map keeps key matching case-sensitive
	if err := json.Unmarshal(js, &top); err != nil {
		return invalidf("%s", tidy(err.Error()))
	}
	apiVersion, err := stringField(top, "apiVersion")
	if err != nil {
		return err
	}
	kind, err := stringField(top, "kind")
	if err != nil {
		return err
	}
	switch {
	case kind == "":
		return invalidf("kind: Required value: only v1 Pod is supported")
	case kind != "Pod":
		return invalidf("kind: %s is not supported: only v1 Pod", kind)
	case apiVersion == "":
		return invalidf("apiVersion: Required value: only v1 Pod is supported")
	case apiVersion != "v1":
		return invalidf("apiVersion: %s is not supported: only v1 Pod", apiVersion)
	}
	return nil
}

func stringField(top map[string]json.RawMessage, key string) (string, error) {
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
// invalid, so that a broken file can still be listed under its pod's name. It is best effort and
// returns "" for what it cannot find; the namespace is not defaulted.
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
	return "", ""
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
