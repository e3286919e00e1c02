//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || illumos)

package archive

import "os"

// fencingAvailable is false where the syscall package has no flock(2)
// (Windows, Solaris, AIX, wasm, ...): partition locks are always granted
// and no lock file is written, so archivers sharing a directory are not
// fenced; Run logs a warning when it starts.
const fencingAvailable = false

func tryFlock(*os.File) (bool, error) { return true, nil }

func unlockFlock(*os.File) error { return nil }
