//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || illumos

package flock

import (
	"errors"
	"os"
	"syscall"
)

// Available reports whether locks exclude other holders on this
// platform: flock(2) is used where the syscall package has it.
const Available = true

// TryLock takes an exclusive flock on f without blocking and reports
// whether it got it.
func TryLock(f *os.File) (bool, error) {
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

// Unlock drops the flock on f (closing f would too).
func Unlock(f *os.File) error {
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
