package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/leadscore/leadscore/internal/flock"
)

// fencingAvailable reports whether partition locks exclude other
// archivers on this platform (internal/flock): where the syscall package
// has no flock(2) (Windows, Solaris, AIX, wasm, ...) partition locks are
// always granted and no lock file is written, so archivers sharing a
// directory are not fenced; Run logs a warning when it starts.
const fencingAvailable = flock.Available

// LockDir is the directory under Config.Dir that holds one lock file per
// partition, <topic>-<partition>.lock. Its name starts with "_", like
// Spark's _SUCCESS, so that Hive-style readers pointed at the archive root
// skip it (pyarrow.dataset and Spark ignore paths whose names start with
// "_" or "."); readers pointed at a table directory never see it.
const LockDir = "_locks"

// lockRetry is how often a partition lock held by another archiver is
// tried again.
const lockRetry = 100 * time.Millisecond

// lockLogEvery is how often a wait for a lock that goes on is logged
// again.
const lockLogEvery = 10 * time.Second

// lockPath returns the lock file of tp under root. The partition number
// is the part after the last '-', so the name is unambiguous.
func lockPath(root string, tp topicPartition) string {
	return filepath.Join(root, LockDir, fmt.Sprintf("%s-%d.lock", tp.topic, tp.partition))
}

// partitionLock is an archiver's exclusive claim on the files of one
// partition in one archive directory: an flock(2) LOCK_EX on the
// partition's lock file, held through its own open file description, so
// that two archivers of one process exclude each other as two processes
// do, and the kernel drops it when the process dies. Where flock is not
// available (fencingAvailable is false) the lock is always granted and
// no file is opened.
type partitionLock struct {
	tp   topicPartition
	path string
	f    *os.File // open while held or being tried; nil without fencing
	held bool
}

// tryLock takes the lock if no other open file description holds it and
// reports whether it did; it never blocks. The lock file is created if
// missing and kept open between tries.
func (l *partitionLock) tryLock() (bool, error) {
	if !fencingAvailable {
		return true, nil
	}
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return false, fmt.Errorf("archive: open lock %s: %w", l.path, err)
		}
		l.f = f
	}
	ok, err := flock.TryLock(l.f)
	if err != nil {
		return false, fmt.Errorf("archive: flock %s: %w", l.path, err)
	}
	l.held = ok
	return ok, nil
}

// writeHolder records who holds the lock (pid, host, since when) in the
// lock file, for the log of an archiver that waits for it. The content is
// informational only: the flock is the lock.
func (l *partitionLock) writeHolder() error {
	if !l.held {
		return nil
	}
	if err := flock.WriteHolder(l.f); err != nil {
		return fmt.Errorf("archive: write lock holder %s: %w", l.path, err)
	}
	return nil
}

// release drops the lock (or gives up trying) and closes the lock file.
// The file stays: removing it while another archiver has it open would
// let a third one lock a new file of the same name.
func (l *partitionLock) release() {
	if l.f == nil {
		return
	}
	if l.held {
		_ = l.f.Truncate(0) // the holder line would be stale
		_ = flock.Unlock(l.f)
		l.held = false
	}
	_ = l.f.Close()
	l.f = nil
}

// lockPartitions takes the locks of tps, waiting for those another
// archiver holds: each is tried without blocking every lockRetry until it
// is free or ctx is done. The wait is logged when it starts and every
// lockLogEvery, counted in leadscore_archive_lock_wait_seconds_total and
// shown by leadscore_archive_lock_waiting_partitions. On error (ctx done,
// a lock file that cannot be opened) every lock taken is released and
// nil is returned. It takes no a.mu: Run and the other callbacks go on
// while it waits.
func (a *Archiver) lockPartitions(ctx context.Context, tps []topicPartition) (map[topicPartition]*partitionLock, error) {
	held := make(map[topicPartition]*partitionLock, len(tps))
	if len(tps) == 0 {
		return held, nil
	}
	var waiting []*partitionLock
	fail := func(err error) (map[topicPartition]*partitionLock, error) {
		for _, l := range waiting {
			l.release()
		}
		for _, l := range held {
			l.release()
		}
		return nil, err
	}
	if fencingAvailable {
		if err := ensureDir(a.cfg.Dir, filepath.Join(a.cfg.Dir, LockDir)); err != nil {
			return nil, err
		}
	}
	took := func(l *partitionLock) {
		held[l.tp] = l
		if err := l.writeHolder(); err != nil {
			a.log.Debug("lock holder not recorded", "err", err)
		}
	}
	for _, tp := range tps {
		l := &partitionLock{tp: tp, path: lockPath(a.cfg.Dir, tp)}
		ok, err := l.tryLock()
		switch {
		case err != nil:
			l.release()
			return fail(err)
		case ok:
			took(l)
		default:
			waiting = append(waiting, l)
		}
	}
	if len(waiting) == 0 {
		return held, nil
	}

	start := time.Now()
	for _, l := range waiting {
		a.log.Warn("waiting for archive lock of partition held by another archiver",
			"topic", l.tp.topic, "partition", l.tp.partition, "holder", flock.Holder(l.path), "lock", l.path)
	}
	a.m.lockWaiting.Add(float64(len(waiting)))
	defer func() { a.m.lockWaiting.Sub(float64(len(waiting))) }()
	tick := time.NewTicker(lockRetry)
	defer tick.Stop()
	last, lastLog := start, start
	for len(waiting) > 0 {
		select {
		case <-ctx.Done():
			a.m.lockWaitSeconds.Add(time.Since(last).Seconds() * float64(len(waiting)))
			a.log.Info("stopped waiting for archive locks", "partitions", len(waiting),
				"waited", time.Since(start).Round(time.Millisecond), "err", ctx.Err())
			return fail(fmt.Errorf("archive: waiting for partition locks: %w", ctx.Err()))
		case now := <-tick.C:
			a.m.lockWaitSeconds.Add(now.Sub(last).Seconds() * float64(len(waiting)))
			last = now
		}
		logAgain := time.Since(lastLog) >= lockLogEvery
		if logAgain {
			lastLog = time.Now()
		}
		for i := 0; i < len(waiting); {
			l := waiting[i]
			ok, err := l.tryLock()
			if err != nil {
				return fail(err)
			}
			if !ok {
				if logAgain {
					a.log.Warn("still waiting for archive lock of partition held by another archiver",
						"topic", l.tp.topic, "partition", l.tp.partition, "holder", flock.Holder(l.path),
						"waited", time.Since(start).Round(time.Second))
				}
				i++
				continue
			}
			waiting = append(waiting[:i], waiting[i+1:]...)
			a.m.lockWaiting.Dec()
			took(l)
			a.log.Info("archive lock acquired after waiting", "topic", l.tp.topic, "partition", l.tp.partition,
				"waited", time.Since(start).Round(time.Millisecond))
		}
	}
	return held, nil
}
