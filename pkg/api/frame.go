package api

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Stream numbers of exec frames (see the package documentation).
const (
	StreamStdin  byte = 0
	StreamStdout byte = 1
	StreamStderr byte = 2
	StreamExit   byte = 3
	StreamError  byte = 4
)

// MaxFramePayload is the largest payload of one exec frame.
const MaxFramePayload = 1 << 20

// ExecProtocol is the value of the Upgrade header of exec sessions.
const ExecProtocol = "minipod-exec/1"

// chunkSize is how much data one frame carries when splitting a write.
const chunkSize = 32 << 10

// ExecRequest is the JSON body of an exec request.
type ExecRequest struct {
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
	TTY       bool     `json:"tty,omitempty"`
	Stdin     bool     `json:"stdin,omitempty"`
}

// frameWriter writes whole frames to w; safe for concurrent use.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (fw *frameWriter) writeFrame(stream byte, payload []byte) error {
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("frame payload of %d bytes is too large", len(payload))
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = stream
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	fw.mu.Lock()
	defer fw.mu.Unlock()
	_, err := fw.w.Write(buf)
	return err
}

// streamWriter is an io.Writer that sends what is written as frames of one stream.
type streamWriter struct {
	fw     *frameWriter
	stream byte
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunkSize)
		if err := sw.fw.writeFrame(sw.stream, p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// readFrame reads one frame from r. A clean end of stream before a header is io.EOF.
func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n > MaxFramePayload {
		return 0, nil, fmt.Errorf("exec frame of %d bytes exceeds the limit of %d", n, MaxFramePayload)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

func encodeExitCode(code int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	return b[:]
}

func decodeExitCode(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("malformed exit code frame (%d bytes)", len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}
