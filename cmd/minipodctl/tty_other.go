//go:build !linux

package main

import "errors"

func isTerminal(fd uintptr) bool { return false }

func makeRaw(fd uintptr) (func(), error) {
	return nil, errors.New("raw terminal mode is only supported on linux")
}
