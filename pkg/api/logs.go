package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/logs"
)

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pod, container, ok := s.podContainer(w, r, q.Get("container"))
	if !ok {
		return
	}
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	follow, previous := isTrue(q.Get("follow")), isTrue(q.Get("previous"))

	path, err := s.rt.LogPath(ns, name, container, previous)
	if err != nil {
		writeError(w, statusFor(err), err.Error())
		return
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			what := "log"
			if previous {
				what = "previous log"
			}
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s of container %q in pod %s/%s not found", what, container, ns, name))
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer f.Close()
	// Logs are kept in the CRI format; clients get the container's output.
	opts := logs.DecodeOptions{Timestamps: isTrue(q.Get("timestamps"))}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "sinceSeconds must be a non-negative integer")
			return
		}
		opts.Since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "tail must be an integer")
			return
		}
		if st, err := f.Stat(); err == nil {
			if _, err := f.Seek(logs.TailOffset(f, st.Size(), n), io.SeekStart); err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
		}
	}
	out := &logs.Decoder{W: w, Opts: opts}

	// A stream, followed or not: a client may rightly read a long log slowly (into a pager),
	// so no write deadline (see Timeouts.Write). It ends when the client goes away.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(out, f); err != nil {
		return
	}
	_ = rc.Flush()
	if !follow {
		return
	}
	attempt := attemptOf(pod, container)
	stillCurrent := func() bool {
		if previous {
			return true
		}
		p, ok := s.findPod(ns, name)
		return ok && attemptOf(p, container) == attempt
	}
	s.follow(r.Context(), out, rc, f, path, stillCurrent)
}

// attemptOf identifies the container's current attempt: when it changes the followed log file
// belongs to a previous attempt and following ends.
func attemptOf(pod *corev1.Pod, container string) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, st := range list {
			if st.Name == container {
				return fmt.Sprintf("%s#%d", st.ContainerID, st.RestartCount)
			}
		}
	}
	return ""
}

// follow streams what is appended to f until ctx ends, the client goes away, the file is
// removed, renamed, replaced or truncated (log rotation), or stillCurrent reports that the
// container moved on to a new attempt. It sleeps on fsnotify events for the file; a slow
// periodic check covers rotations that produce no event on the followed inode.
func (s *Server) follow(ctx context.Context, w io.Writer, rc *http.ResponseController, f *os.File, path string, stillCurrent func() bool) {
	// drain copies everything new; false when the client is gone.
	drain := func() bool {
		if _, err := io.Copy(w, f); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// rotated reports whether path no longer is the file we follow or it was truncated.
	rotated := func() bool {
		cur, err := f.Stat()
		if err != nil {
			return true
		}
		onDisk, err := os.Stat(path)
		if err != nil || !os.SameFile(cur, onDisk) {
			return true
		}
		off, err := f.Seek(0, io.SeekCurrent)
		return err != nil || cur.Size() < off
	}

	var events <-chan fsnotify.Event
	var errs <-chan error
	if watcher, err := fsnotify.NewWatcher(); err != nil {
		s.log.Warn("log follow: cannot create watcher, falling back to periodic checks", "err", err)
	} else {
		defer watcher.Close()
		if err := watcher.Add(path); err != nil {
			s.log.Warn("log follow: cannot watch file, falling back to periodic checks", "path", path, "err", err)
		} else {
			events, errs = watcher.Events, watcher.Errors
		}
	}
	interval := s.followCheck
	if events == nil {
		interval = min(interval, 500*time.Millisecond)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	// Data appended, or a rotation, between the first copy and the watch raised no event for
	// us (and the watch is by path): look now.
	if !drain() || rotated() {
		return
	}

	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if !drain() {
				return
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) || rotated() {
				return
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s.log.Warn("log follow: watcher error", "path", path, "err", err)
		case <-ticker.C:
			if !drain() {
				return
			}
			if rotated() || !stillCurrent() {
				drain()
				return
			}
		}
	}
}
