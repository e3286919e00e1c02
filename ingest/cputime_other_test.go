//go:build !unix

package ingest

import "time"

// threadCPU is not available here.
func threadCPU() time.Duration { return 0 }
