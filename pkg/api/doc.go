// Package api is the local control API of minipod: an HTTP+JSON server that
// the daemon serves on a unix socket, and the client that minipodctl (and any
// other local tool) uses to talk to it.
//
// # Routes
//
//	GET  /v1/pods                                  -> v1 PodList (JSON)
//	GET  /v1/pods/{namespace}/{name}               -> v1 Pod (JSON)
//	GET  /v1/pods/{namespace}/{name}/logs          -> log stream (text/plain)
//	     ?container=NAME  container (may be omitted when the pod has exactly one)
//	     &follow=1        keep streaming appended data until the client goes away
//	     &previous=1      log of the previous attempt of the container
//	POST /v1/pods/{namespace}/{name}/exec          -> exec session (see below)
//
// Errors are JSON objects {"error":"message"} with a meaningful status code:
// 400 for malformed requests, 404 for unknown pods, containers or logs, 405
// for a wrong method and 500 for daemon failures. Resolving a bare pod name to
// its namespace is the client's job (from the PodList); the server only knows
// namespace/name.
//
// # Exec wire protocol (minipod-exec/1)
//
// Exec needs full duplex streams (stdin flowing to the command while its
// output flows back) plus an exit code at the end, so it upgrades the HTTP
// connection. The client sends:
//
//	POST /v1/pods/{namespace}/{name}/exec HTTP/1.1
//	Connection: Upgrade
//	Upgrade: minipod-exec/1
//	Content-Type: application/json
//
//	{"container":"app","command":["sh","-c","..."],"tty":false,"stdin":true}
//
// If the pod, container or request is not valid, the server answers with an
// ordinary JSON error (404, 400, 426 without the upgrade headers). Otherwise it
// hijacks the connection and answers
//
//	HTTP/1.1 101 Switching Protocols
//	Connection: Upgrade
//	Upgrade: minipod-exec/1
//
// and from then on both sides exchange frames on the raw connection. A frame is
// a 5-byte header followed by its payload:
//
//	byte 0     stream number
//	bytes 1-4  payload length, uint32 big-endian (at most MaxFramePayload)
//	bytes 5-   payload
//
// Streams:
//
//	0 StreamStdin   client->server  bytes for the command's stdin; an empty
//	                                stdin frame means stdin EOF
//	1 StreamStdout  server->client  command output
//	2 StreamStderr  server->client  command error output (with a TTY the
//	                                runtime normally merges it into stdout)
//	3 StreamExit    server->client  exit code, int32 big-endian (4 bytes);
//	                                last frame of a session that ran
//	4 StreamError   server->client  UTF-8 message: the command could not be
//	                                run; last frame of a failed session
//
// Frames with an unknown stream number are ignored by both sides (room for e.g.
// terminal resize later); stdin frames are ignored when the request did not ask
// for stdin. After the exit or error frame the server closes the connection.
// The client keeps its side open until then: if the server sees the client's
// side end before the command has finished, it cancels the command.
package api
