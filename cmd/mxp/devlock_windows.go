//go:build windows

package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// errLocked: another process holds the lock.
var errLocked = errors.New("locked by another process")

// lockFile creates path exclusively. A file left by a process that is gone is taken
// over (Windows has no advisory lock that the standard library exposes).
func lockFile(path string) (*os.File, error) {
	for range 2 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && !processGone(pid) {
			return nil, errLocked
		}
		_ = os.Remove(path)
	}
	return nil, errLocked
}
