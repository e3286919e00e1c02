//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || illumos)

package flock

import "os"

// Available is false where the syscall package has no flock(2)
// (Windows, Solaris, AIX, wasm, ...): every lock is granted, so holders
// sharing a file are not fenced; the callers warn when they start.
const Available = false

// TryLock always reports the lock taken: there is no flock here.
func TryLock(*os.File) (bool, error) { return true, nil }

// Unlock does nothing: there is no flock here.
func Unlock(*os.File) error { return nil }
