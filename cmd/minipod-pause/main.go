// Command minipod-pause is the first process (PID 1) of every minipod pod
// sandbox, the equivalent of the Kubernetes "pause" container.
//
// A pod's containers share Linux namespaces (network, IPC, UTS and, with
// shareProcessNamespace, PID). Namespaces only live as long as some process
// is in them, so minipod starts this tiny process first, joins every other
// container of the pod to its namespaces, and keeps it running until the pod
// is torn down. That way containers can crash and restart without losing the
// pod's IP address or shared IPC objects.
//
// When the pod shares one PID namespace, minipod-pause is its init: orphaned
// processes are re-parented to it, so it reaps zombies (SIGCHLD followed by a
// wait4(-1, WNOHANG) loop). As PID 1 of a PID namespace the kernel drops
// signals for which no handler is installed, so it explicitly handles SIGTERM
// and SIGINT and exits 0 on either.
//
// It does nothing else and is built as a small static binary
// (CGO_ENABLED=0 go build -ldflags='-s -w') that runs from an otherwise
// empty image (see pkg/imagebuild.Pause and cmd/mkimage).
package main

import (
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is printed by -v; override with -ldflags '-X main.version=...'.
var version = "3.10-minipod"

func main() {
	// One P is plenty for a process that only waits for signals.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(50)

	for _, arg := range os.Args[1:] {
		switch arg {
		case "-v", "--version", "-version":
			os.Stdout.WriteString("minipod-pause version " + version + " (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n")
			os.Exit(0)
		default:
			os.Stderr.WriteString("usage: " + os.Args[0] + " [-v]\n")
			os.Exit(2)
		}
	}

	// Handlers first: as PID 1, a SIGTERM that comes before them is dropped by the kernel and
	// the pod's stop waits for its grace period. The warning below is printed after them, so
	// that a reader of it (the tests) knows the signals are handled.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)

	if os.Getpid() != 1 {
		os.Stderr.WriteString("minipod-pause: warning: not running as PID 1; zombies of other processes will not be reaped\n")
	}

	// Children may have exited before the handler was installed.
	reap()
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			os.Stderr.WriteString("minipod-pause: shutting down, got signal: " + sig.String() + "\n")
			os.Exit(0)
		}
	}
}

// reap collects every exited child without blocking. SIGCHLD notifications
// coalesce, so it loops until wait4 reports no more zombies.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
