// Package flock is the exclusive, non-blocking flock(2) lock that keeps
// two writers off the same files: the archive's partition locks
// (sinks/archive) and dev's lock on its broker data directory
// (cmd/leadscore). The lock belongs to an open file description, so two
// opens of one file in one process exclude each other as two processes
// do, and the kernel drops it when the file is closed or the process
// dies, even by SIGKILL.
//
// Where Go's syscall package has no flock (Windows, Solaris, AIX, wasm)
// Available is false and TryLock always succeeds: there is no fencing,
// and the callers say so when they start.
package flock

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"
)

// WriteHolder records who holds the lock on f (pid, host, since when) in
// the lock file, for the message of whoever finds it locked. The content
// is informational only: the flock is the lock.
func WriteHolder(f *os.File) error {
	host, _ := os.Hostname()
	b := fmt.Appendf(nil, "pid %d host %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// Holder returns the holder line that WriteHolder wrote in the lock file
// at path, or "unknown" (no such file, empty, or being rewritten).
func Holder(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 512))
	if b = bytes.TrimSpace(b); len(b) == 0 {
		return "unknown"
	}
	return string(b)
}
