package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain turns the test binary into minipod-pause when re-executed by the
// tests below. With MINIPOD_PAUSE_CHILDREN=n it first starts n short-lived
// children and never waits for them: pause must reap them.
func TestMain(m *testing.M) {
	if os.Getenv("MINIPOD_PAUSE_HELPER") != "1" {
		os.Exit(m.Run())
	}
	n, _ := strconv.Atoi(os.Getenv("MINIPOD_PAUSE_CHILDREN"))
	for i := 0; i < n; i++ {
		if _, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 0"}, &os.ProcAttr{}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
	}
	os.Args = append([]string{"minipod-pause"}, strings.Fields(os.Getenv("MINIPOD_PAUSE_ARGS"))...)
	main()
}

func helper(t *testing.T, children int, args string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		"MINIPOD_PAUSE_HELPER=1",
		"MINIPOD_PAUSE_CHILDREN="+strconv.Itoa(children),
		"MINIPOD_PAUSE_ARGS="+args)
	return cmd
}

// syncBuffer is a bytes.Buffer that os/exec's copying goroutine can write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// zombies counts the zombie children of pid.
func zombies(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}

func TestReapAndTerm(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := helper(t, 5, "")
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		// The warning is printed once the signal handlers are installed: a signal sent before
		// them would end the helper (it is not PID 1) and the test would fail at random.
		deadline := time.Now().Add(5 * time.Second)
		for zombies(t, pid) > 0 || !strings.Contains(stderr.String(), "not running as PID 1") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("zombies not reaped (%d left); stderr %q", zombies(t, pid), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: exit: %v; stderr %q", sig, err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%v: still running", sig)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := helper(t, 0, "-v").Output()
	if err != nil || !strings.HasPrefix(string(out), "minipod-pause version ") {
		t.Errorf("-v: %q, %v", out, err)
	}
	if err := helper(t, 0, "-bogus").Run(); err == nil {
		t.Error("unknown flag accepted")
	}
}
