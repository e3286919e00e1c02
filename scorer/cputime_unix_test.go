//go:build unix

package scorer

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used,
// and true. Benchmarks report it per op besides wall time: on a shared,
// loaded machine it is the steadier figure.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
