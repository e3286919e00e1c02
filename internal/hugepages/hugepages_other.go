//go:build !linux

package hugepages

import (
	"context"
	"errors"
	"fmt"
)

var errNotLinux = fmt.Errorf("hugepages: %w: transparent huge pages are Linux's", errors.ErrUnsupported)

// Mode returns the kernel's THP mode; on this system, an error wrapping
// errors.ErrUnsupported.
func Mode() (string, error) { return "", errNotLinux }

// Advise gives huge page advice on Linux; on this system it returns an
// error wrapping errors.ErrUnsupported.
func Advise(collapse bool) (Stats, error) { return Stats{}, errNotLinux }

func advise(context.Context, bool) (Stats, error) { return Stats{}, errNotLinux }

// AnonHugeBytes returns the process's memory backed by huge pages on
// Linux; on this system, an error wrapping errors.ErrUnsupported.
func AnonHugeBytes() (int64, error) { return 0, errNotLinux }
