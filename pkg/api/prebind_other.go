//go:build !linux

package api

// prebind does nothing where bind(2) takes a socket file's mode from the umask alone;
// listenUnix then refuses a socket created open to group or others.
func prebind(fd uintptr) error { return nil }
