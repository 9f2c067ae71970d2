package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func (s *Server) handleExec(w http.ResponseWriter, r *http.Request) {
	var req ExecRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid exec request: %v", err))
		return
	}
	if len(req.Command) == 0 {
		writeError(w, http.StatusBadRequest, "invalid exec request: command is empty")
		return
	}
	_, container, ok := s.podContainer(w, r, req.Container)
	if !ok {
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), ExecProtocol) {
		writeError(w, http.StatusUpgradeRequired, "exec requires Connection: Upgrade and Upgrade: "+ExecProtocol)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusInternalServerError, "connection cannot be upgraded")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		s.log.Warn("exec: hijack failed", "err", err)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+ExecProtocol+"\r\n\r\n"); err != nil {
		return
	}

	ns, name := r.PathValue("namespace"), r.PathValue("name")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	fw := &frameWriter{w: conn}

	var stdin io.Reader
	var stdinR *io.PipeReader
	var stdinW *io.PipeWriter
	if req.Stdin {
		stdinR, stdinW = io.Pipe()
		stdin = stdinR
	}
	// Read client frames until the connection ends. The client keeps its side open until the
	// exit frame, so an end before that means it is gone: cancel the command.
	go func() {
		stdinOpen := stdinW != nil
		for {
			stream, payload, err := readFrame(brw.Reader)
			if err != nil {
				if stdinOpen {
					stdinW.CloseWithError(io.ErrUnexpectedEOF)
				}
				cancel()
				return
			}
			if stream != StreamStdin || !stdinOpen {
				continue
			}
			if len(payload) == 0 {
				stdinW.Close()
				stdinOpen = false
				continue
			}
			if _, err := stdinW.Write(payload); err != nil {
				// The command stopped reading stdin; drop further input.
				stdinOpen = false
			}
		}
	}()

	log := s.log.With("pod", ns+"/"+name, "container", container, "cmd", req.Command)
	log.Debug("exec start", "tty", req.TTY, "stdin", req.Stdin)
	code, err := s.rt.Exec(ctx, ns, name, container, req.Command, req.TTY, stdin,
		&streamWriter{fw: fw, stream: StreamStdout}, &streamWriter{fw: fw, stream: StreamStderr})
	if stdinR != nil {
		stdinR.Close() // unblocks the reader goroutine if the command left stdin unread
	}
	if ctx.Err() != nil {
		if r.Context().Err() == nil {
			log.Debug("exec: client went away", "err", err)
			return
		}
		err = errors.New("exec interrupted: minipod is shutting down")
	}
	if err != nil {
		log.Info("exec failed", "err", err)
		_ = fw.writeFrame(StreamError, []byte(err.Error()))
		return
	}
	log.Debug("exec done", "code", code)
	_ = fw.writeFrame(StreamExit, encodeExitCode(code))
}

// headerHasToken reports whether a comma-separated header contains token (case-insensitively).
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
