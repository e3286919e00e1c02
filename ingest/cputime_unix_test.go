//go:build unix

package ingest

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU returns the calling OS thread's user+system CPU time, or 0
// where that is not available (RUSAGE_THREAD is Linux's).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	if runtime.GOOS != "linux" || syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
