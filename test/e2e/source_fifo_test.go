package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO dropped in the manifest directory is listed with a reason, and the source goes on:
// a manifest written afterwards runs (issue 20). The systemd watchdog, which now needs the
// source's loop alive too, keeps being fed.
func TestSourceFIFO(t *testing.T) {
	d := newDaemon(t)
	sock := filepath.Join(env.dir, fmt.Sprintf("notify-fifo-%d.sock", os.Getpid()))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer os.Remove(sock)
	pings := make(chan time.Time, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "WATCHDOG=1") {
				select {
				case pings <- time.Now():
				default:
				}
			}
		}
	}()
	d.env = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}
	d.start()

	fifo := filepath.Join(d.manifests, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	d.eventually(30*time.Second, "the FIFO listed with a reason", func() (bool, string) {
		p := d.pod("fifo.yaml")
		if p == nil {
			return false, "not listed"
		}
		return p.Status.Reason == "UnreadableManifest" && strings.Contains(p.Status.Message, "not a regular file"),
			p.Status.Reason + ": " + p.Status.Message
	})
	d.writeManifest("after.yaml", `apiVersion: v1
kind: Pod
metadata: {name: after}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	d.waitRunning("after", 60*time.Second)
	if p := d.pod("fifo.yaml"); p == nil || p.Annotations["minipod.io/manifest"] != fifo {
		t.Errorf("the FIFO's entry does not name its file: %+v", p)
	} else {
		t.Logf("fifo.yaml: %s: %s", p.Status.Reason, p.Status.Message)
	}

	// Watchdog pings at half of 400 ms, with the FIFO still there: a few within 3 s.
	for len(pings) > 0 {
		<-pings
	}
	for i := range 3 {
		select {
		case <-pings:
		case <-time.After(3 * time.Second):
			t.Fatalf("watchdog ping %d of 3 missing", i+1)
		}
	}
}
