package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml2 "go.yaml.in/yaml/v2"
)

// newFlagSet defines one flag per key of Config, bound to cfg's fields, with cfg's values as
// defaults.
func newFlagSet(cfg *Config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("minipod", flag.ContinueOnError)
	fs.SetOutput(stderr)
	v := reflect.ValueOf(cfg).Elem()
	for _, f := range fields {
		p := v.Field(f.index).Addr().Interface()
		switch p := p.(type) {
		case *string:
			fs.StringVar(p, f.key, *p, usage[f.key])
		case *int:
			fs.IntVar(p, f.key, *p, usage[f.key])
		case *bool:
			fs.BoolVar(p, f.key, *p, usage[f.key])
		case flag.Value:
			fs.Var(p, f.key, usage[f.key])
		default:
			panic(fmt.Sprintf("config: no flag for key %s of type %T", f.key, p))
		}
	}
	return fs
}

// decode reads the YAML (or JSON) document data, from the file path, over cfg. Keys absent
// from the document leave cfg's values. It returns the line of each key present (0 when
// unknown).
func decode(path string, data []byte, cfg *Config) (map[string]int, error) {
	var top map[string]any
	if err := yaml2.UnmarshalStrict(data, &top); err != nil {
		return nil, yamlError(path, "", err, 0)
	}
	keys := make([]string, 0, len(top))
	lines := make(map[string]int, len(top))
	for k := range top {
		keys = append(keys, k)
		lines[k] = keyLine(data, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if lines[keys[i]] != lines[keys[j]] {
			return lines[keys[i]] < lines[keys[j]]
		}
		return keys[i] < keys[j]
	})

	var errs []error
	out := reflect.ValueOf(cfg).Elem()
	for _, k := range keys {
		where := at(path, lines[k])
		f, ok := lookupField(k)
		if !ok {
			msg := "unknown key"
			if s := suggest(k); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &FieldError{Where: where, Key: k, Msg: msg})
			continue
		}
		if top[k] == nil {
			errs = append(errs, &FieldError{Where: where, Key: k, Msg: `has no value (write "" for an empty string)`})
			continue
		}
		// Decode the document again into a struct that has only this key: type errors then
		// belong to this key, and carry their line.
		typ := out.Field(f.index).Type()
		st := reflect.StructOf([]reflect.StructField{{
			Name: "V",
			Type: typ,
			Tag:  reflect.StructTag(`yaml:` + strconv.Quote(k)),
		}})
		v := reflect.New(st)
		if err := yaml2.Unmarshal(data, v.Interface()); err != nil {
			errs = append(errs, yamlError(path, k, err, lines[k]))
			continue
		}
		out.Field(f.index).Set(v.Elem().Field(0))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return lines, nil
}

func at(path string, line int) string {
	if line <= 0 {
		return path
	}
	return fmt.Sprintf("%s:%d", path, line)
}

var (
	lineRE      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	duplicateRE = regexp.MustCompile(`^key "(.*)" already set in map$`)
	convertRE   = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.+)$")
)

// yamlError turns an error of go.yaml.in/yaml/v2 into FieldErrors (key != "") or plain errors
// that name the file and line.
func yamlError(path, key string, err error, line int) error {
	var msgs []string
	var te *yaml2.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		l := line
		if g := lineRE.FindStringSubmatch(m); g != nil {
			l, _ = strconv.Atoi(g[1])
			m = g[2]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		if g := duplicateRE.FindStringSubmatch(m); g != nil && key == "" {
			errs = append(errs, &FieldError{Where: at(path, l), Key: g[1], Msg: "duplicate key"})
			continue
		}
		if g := convertRE.FindStringSubmatch(m); g != nil {
			switch {
			case key == "" && strings.HasPrefix(g[3], "map["):
				m = "the file must be a mapping of keys to values"
			case key == "":
				m = fmt.Sprintf("key %s is not a string", g[2])
			default:
				got := g[2]
				if got == "" {
					got = map[string]string{"seq": "a list", "map": "a mapping"}[g[1]]
				}
				if got == "" {
					got = "a " + g[1]
				}
				m = fmt.Sprintf("expected %s, got %s", typeName(g[3]), got)
			}
		}
		if key == "" {
			errs = append(errs, fmt.Errorf("%s: %s", at(path, l), m))
		} else {
			errs = append(errs, &FieldError{Where: at(path, l), Key: key, Msg: m})
		}
	}
	return errors.Join(errs...)
}

func typeName(goType string) string {
	switch goType {
	case "int":
		return "an integer"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	// Nested keys (the policy) name Go types that mean nothing in a configuration file.
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	}
	return goType
}

// keyLine is the 1-based line of a top-level key in data, 0 when not found (flow style).
func keyLine(data []byte, key string) int {
	q := regexp.QuoteMeta(key)
	re := regexp.MustCompile(`^(?:` + q + `|"` + q + `"|'` + q + `')[ \t]*:`)
	for i, l := range strings.Split(string(data), "\n") {
		if re.MatchString(strings.TrimRight(l, "\r")) {
			return i + 1
		}
	}
	return 0
}

// suggest is a known key close to an unknown one: other case, '_' or camelCase for '-'.
func suggest(k string) string {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "", ".", "").Replace(strings.ToLower(s))
	}
	n := norm(k)
	for _, f := range fields {
		if norm(f.key) == n {
			return f.key
		}
	}
	return ""
}
