package runtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A task containerd reports UNKNOWN (its shim did not answer in time) is asked about again
// until its state is known; one that stays unknown is an error, never "not running".
func TestWhileUnknown(t *testing.T) {
	calls := 0
	err := whileUnknown(context.Background(), "c1", func() (bool, error) {
		calls++
		return calls < 3, nil
	})
	if err != nil || calls != 3 {
		t.Errorf("known on the third answer: %d calls, %v", calls, err)
	}

	boom := errors.New("boom")
	calls = 0
	if err := whileUnknown(context.Background(), "c1", func() (bool, error) { calls++; return false, boom }); err != boom || calls != 1 {
		t.Errorf("an error is returned at once: %d calls, %v", calls, err)
	}

	defer func(w time.Duration) { unknownWait = w }(unknownWait)
	unknownWait = 300 * time.Millisecond
	calls = 0
	if err := whileUnknown(context.Background(), "c1", func() (bool, error) { calls++; return true, nil }); err == nil || calls < 2 {
		t.Errorf("always unknown: %d calls, %v; want an error after some tries", calls, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := whileUnknown(ctx, "c1", func() (bool, error) { return true, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
