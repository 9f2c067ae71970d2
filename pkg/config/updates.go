package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Updates is how a changed manifest replaces its running pod: the file's `updates:` mapping,
// or --updates as JSON. A pod's annotations minipod.io/rollback and
// minipod.io/progress-deadline override it.
type Updates struct {
	// Rollback brings back the last version that was Ready when an update fails: it crash
	// loops, cannot pull or create a container, or is not Ready within ProgressDeadline.
	Rollback bool `json:"rollback" yaml:"rollback"`
	// ProgressDeadline is how long an update may take to become Ready before it counts as
	// failed (with Rollback).
	ProgressDeadline Duration `json:"progressDeadline" yaml:"progressDeadline"`
}

// DefaultProgressDeadline is a Deployment's progressDeadlineSeconds default, 600 s, halved: an
// edge device that cannot start its pod in five minutes is better off on the old version.
const DefaultProgressDeadline = 5 * time.Minute

var updatesKeys = []string{"progressDeadline", "rollback"}

// String is the JSON form, for the flag's help and --print-config.
func (u *Updates) String() string {
	if u == nil {
		return ""
	}
	b, _ := json.Marshal(u)
	return string(b)
}

// Set parses --updates: a JSON object with the keys rollback and progressDeadline; a key left
// out keeps its default.
func (u *Updates) Set(s string) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return fmt.Errorf("updates: %w (write a JSON object like {\"rollback\":true,\"progressDeadline\":\"5m\"})", err)
	}
	v := Updates{ProgressDeadline: Duration(DefaultProgressDeadline)}
	if err := v.apply(func(key string, dst any) error { return json.Unmarshal(raw[key], dst) }, slices.Sorted(maps.Keys(raw))); err != nil {
		return err
	}
	*u = v
	return nil
}

// UnmarshalYAML reads the file's updates: mapping (go.yaml.in/yaml/v2 Unmarshaler), refusing
// keys it does not know.
func (u *Updates) UnmarshalYAML(unmarshal func(any) error) error {
	var raw map[string]any
	if err := unmarshal(&raw); err != nil {
		return fmt.Errorf("updates must be a mapping with the keys %s", strings.Join(updatesKeys, ", "))
	}
	v := Updates{ProgressDeadline: Duration(DefaultProgressDeadline)}
	err := v.apply(func(key string, dst any) error {
		b, _ := json.Marshal(raw[key])
		return json.Unmarshal(b, dst)
	}, slices.Sorted(maps.Keys(raw)))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// apply decodes each key with get into u.
func (u *Updates) apply(get func(key string, dst any) error, keys []string) error {
	for _, k := range keys {
		var err error
		switch k {
		case "rollback":
			if err = get(k, &u.Rollback); err != nil {
				err = fmt.Errorf("updates.rollback: must be true or false")
			}
		case "progressDeadline":
			if err = get(k, &u.ProgressDeadline); err != nil {
				err = fmt.Errorf("updates.progressDeadline: %v", err)
			}
		default:
			err = fmt.Errorf("updates.%s: unknown key (known keys: %s)", k, strings.Join(updatesKeys, ", "))
		}
		if err != nil {
			return err
		}
	}
	return u.Validate()
}

// Validate checks the values.
func (u Updates) Validate() error {
	if u.ProgressDeadline <= 0 {
		return fmt.Errorf("updates.progressDeadline: must be > 0, got %s", u.ProgressDeadline)
	}
	return nil
}
