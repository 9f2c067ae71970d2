//go:build conformance_pending

package e2e

import "testing"

// TestConformancePending runs the ported conformance scenarios that fail today
// (pendingScenarios), against a daemon of their own:
//
//	MINIPOD_E2E_NET=57 go test -tags conformance_pending -run TestConformancePending -v ./test/e2e/
func TestConformancePending(t *testing.T) {
	var run []scenario
	for _, sc := range allScenarios(t) {
		if why, ok := pendingScenarios[sc.group+"/"+sc.name]; ok {
			t.Logf("pending: %s/%s: %s", sc.group, sc.name, why)
			run = append(run, sc)
		}
	}
	runConformance(t, run)
}
