package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to everything the daemon runs on a file. None of it may panic,
// and a failure must always be an *Error so that the file is listed with a reason.
// Seeds: testdata/fuzz/FuzzLoad plus the example manifests. Run with
// `go test -fuzz=FuzzLoad ./pkg/manifest/`.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(podYAML))
	f.Add([]byte(podJSON))
	for _, dir := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		PeekName(data)
		if _, err := DecodeStrict(data); err != nil {
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("DecodeStrict: got %T %v, want *Error", err, err)
			}
		}
		pod, err := Load("/m/fuzz.yaml", data)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) || me.Message == "" {
				t.Fatalf("Load: got %T %v, want *Error with a message", err, err)
			}
			return
		}
		if pod.UID == "" || pod.Annotations[AnnotationConfigHash] != string(pod.UID) {
			t.Fatalf("Load: uid %q hash annotation %q", pod.UID, pod.Annotations[AnnotationConfigHash])
		}
		// A loaded pod stays valid when defaulted again: Load's result is a fixed point.
		SetDefaults(pod)
		if errs := Validate(pod); len(errs) > 0 {
			t.Fatalf("Validate after Load: %v", errs)
		}
	})
}
