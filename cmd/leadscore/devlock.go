package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/leadscore/leadscore/internal/flock"
)

// devLockFile is the lock file dev holds in its --data-dir. The embedded
// broker keeps its whole state there (topics, producer ids, group
// offsets) and writes it back when it closes: two brokers on one
// directory would each restore it, and the last to stop would overwrite
// what the other wrote (offsets going back, records read again).
const devLockFile = "leadscore-dev.lock"

// lockDataDir takes dev's exclusive lock on dir, which must exist, for the
// life of the process (internal/flock: the kernel drops it if the process
// dies, even by SIGKILL), and writes this process's pid in the lock file.
// If another process holds it, it returns a usageError naming dir and
// the holder. release truncates the holder line and drops the lock; the
// file stays (removing it while another dev has it open would let a third
// one lock a new file of the same name). Where the platform has no flock
// there is no fencing, as for the archive: the start is logged with a
// warning and no lock file is written.
func lockDataDir(dir string, log *slog.Logger) (release func(), err error) {
	if !flock.Available {
		log.Warn("no flock(2) on this platform: dev processes sharing --data-dir are not fenced; run one dev per data directory",
			"data_dir", dir)
		return func() {}, nil
	}
	path := filepath.Join(dir, devLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: open lock file: %w", err)
	}
	ok, err := flock.TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--data-dir: flock %s: %w", path, err)
	}
	if !ok {
		f.Close()
		return nil, usageError{fmt.Errorf("--data-dir %s is in use by another 'leadscore dev' (holder: %s; lock file %s): "+
			"two embedded brokers on one data directory overwrite each other's state; stop that one or give another --data-dir",
			dir, flock.Holder(path), path)}
	}
	if err := flock.WriteHolder(f); err != nil {
		log.Debug("data directory lock holder not recorded", "lock", path, "err", err)
	}
	return func() {
		_ = f.Truncate(0) // the holder line would be stale
		_ = flock.Unlock(f)
		_ = f.Close()
	}, nil
}
