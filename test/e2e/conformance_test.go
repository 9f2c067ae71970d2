package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestConformance runs every ported node conformance scenario that passes today against one
// daemon with the default settings (docs/conformance.md lists them with their upstream names).
// The ported scenarios that fail today are listed in pendingScenarios and run only by
// TestConformancePending, built with -tags conformance_pending.
func TestConformance(t *testing.T) {
	var run []scenario
	for _, sc := range allScenarios(t) {
		if _, ok := pendingScenarios[sc.group+"/"+sc.name]; !ok {
			run = append(run, sc)
		}
	}
	runConformance(t, run)
}

// pendingScenarios are the ported scenarios that fail today, keyed by group/name, with why:
// a deviation of issue 23, or a finding (docs/conformance.md says more). Once the daemon is
// fixed, the entry goes and the scenario joins TestConformance.
var pendingScenarios = map[string]string{}

// allScenarios are all ported scenarios; it fails the test when pendingScenarios names one that
// does not exist.
func allScenarios(t *testing.T) []scenario {
	all := slices.Concat(
		runtimeScenarios(),
		securityContextScenarios(),
		probeScenarios(),
		initContainerScenarios(),
		lifecycleHookScenarios(),
		expansionScenarios(),
		downwardAPIScenarios(),
		containersScenarios(),
		kubeletScenarios(),
		podsScenarios(),
		miscNodeScenarios(),
		emptyDirScenarios(),
		hostPathScenarios(),
		downwardAPIVolumeScenarios(),
		configMapVolumeScenarios(),
		secretVolumeScenarios(),
		projectedCombinedScenarios(),
	)
	names := map[string]bool{}
	for _, sc := range all {
		key := sc.group + "/" + sc.name
		if names[key] {
			t.Fatalf("two scenarios named %s", key)
		}
		names[key] = true
	}
	for key := range pendingScenarios {
		if !names[key] {
			t.Fatalf("pendingScenarios names %q, which is no scenario", key)
		}
	}
	return all
}

// manifest is a Pod manifest with the given metadata fields (flow style, without braces) and
// spec (lines indented by two spaces).
func manifest(name, spec string, meta ...string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {%s}\nspec:\n%s", strings.Join(append([]string{"name: " + name}, meta...), ", "), spec)
}

// ctr is one item of a container list in a manifest: its fields, each a YAML line (flow style
// for anything nested).
func ctr(fields ...string) string {
	var b strings.Builder
	for i, f := range fields {
		if i == 0 {
			b.WriteString("  - " + f + "\n")
		} else {
			b.WriteString("    " + f + "\n")
		}
	}
	return b.String()
}

// cmd is a command or args field: a flow sequence of quoted strings.
func cmd(field string, words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = fmt.Sprintf("%q", w)
	}
	return field + ": [" + strings.Join(q, ", ") + "]"
}
