package api

import "syscall"

// prebind gives the unbound socket fd the mode its file is to be created with: on Linux,
// bind(2) creates a socket file with the socket's own mode less the umask, so a socket made
// 0600 here appears owner-only whatever the umask.
func prebind(fd uintptr) error { return syscall.Fchmod(int(fd), 0o600) }
