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
		if _, err := DecodeAllStrict(data); err != nil {
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("DecodeAllStrict: got %T %v, want *Error", err, err)
			}
		}
		pods, err := LoadAll("/m/fuzz.yaml", data)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) || me.Message == "" {
				t.Fatalf("LoadAll: got %T %v, want *Error with a message", err, err)
			}
			return
		}
		if len(pods) == 0 {
			t.Fatalf("LoadAll: no pod and no error")
		}
		for _, pod := range pods {
			if pod.UID == "" || pod.Annotations[AnnotationConfigHash] != string(pod.UID) {
				t.Fatalf("LoadAll: uid %q hash annotation %q", pod.UID, pod.Annotations[AnnotationConfigHash])
			}
			// A loaded pod stays valid when defaulted again: LoadAll's result is a fixed point.
			SetDefaults(pod)
			if errs := Validate(pod); len(errs) > 0 {
				t.Fatalf("Validate after LoadAll: %v", errs)
			}
		}
	})
}
