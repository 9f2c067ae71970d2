package probe

// tracker turns a probe's stream of attempt results into a verdict, like the kubelet's probe
// worker: a result counts only when it is the same as the previous one, successThreshold
// consecutive successes make the verdict Success and failureThreshold consecutive failures make
// it Failure. Unknown results (attempts that could not be made) are ignored and do not break a
// run. It is pure logic: no clock, no I/O, not safe for concurrent use.
type tracker struct {
	successThreshold int
	failureThreshold int

	verdict Result // current verdict
	last    Result // last counted result
	run     int    // how many times in a row last was seen
}

// newTracker returns a tracker with the given thresholds (values below 1 count as 1) and
// initial verdict.
func newTracker(successThreshold, failureThreshold int32, initial Result) *tracker {
	return &tracker{
		successThreshold: max(int(successThreshold), 1),
		failureThreshold: max(int(failureThreshold), 1),
		verdict:          initial,
	}
}

// observe records one attempt result and reports whether the verdict changed, and the verdict.
func (t *tracker) observe(r Result) (changed bool, verdict Result) {
	if r != Success && r != Failure {
		return false, t.verdict
	}
	if r == t.last {
		t.run++
	} else {
		t.last, t.run = r, 1
	}
	threshold := t.successThreshold
	if r == Failure {
		threshold = t.failureThreshold
	}
	if t.run < threshold || t.verdict == r {
		return false, t.verdict
	}
	t.verdict = r
	return true, r
}

// reset forgets the current run (the kubelet does so when liveness or startup fails, before
// the container is restarted).
func (t *tracker) reset() { t.last, t.run = Unknown, 0 }
