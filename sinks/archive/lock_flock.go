//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || illumos

package archive

import (
	"errors"
	"os"
	"syscall"
)

// fencingAvailable reports whether partition locks exclude other
// archivers on this platform: flock(2) is used where the syscall package
// has it.
const fencingAvailable = true

// tryFlock takes an exclusive flock on f without blocking and reports
// whether it got it.
func tryFlock(f *os.File) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return false, err
	}
	if errors.Is(ferr, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return ferr == nil, ferr
}

// unlockFlock drops the flock on f (closing f would too).
func unlockFlock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = syscall.Flock(int(fd), syscall.LOCK_UN) }); err != nil {
		return err
	}
	return ferr
}
