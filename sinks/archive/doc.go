// Package archive writes the pipeline's output to Parquet for analysts
// (SCORING.md 8), following Kafka Connect's sink model: a read_committed
// consumer group reads the output topics, writes Parquet files that
// appear whole, and commits offsets only after the files are durable.
//
// # Tables
//
// Three tables, one directory each under Config.Dir, Hive-partitioned by
// event date in UTC:
//
//	<dir>/touchpoints/dt=YYYY-MM-DD/   rows of TouchpointRow, from the scored topic, dt of occurred_at
//	<dir>/mql/dt=YYYY-MM-DD/           rows of MQLRow, from the MQL topic, dt of qualified_at
//	<dir>/dead_letters/dt=YYYY-MM-DD/  rows of DeadLetterRow, from the DLQ topic, dt of the record timestamp
//
// A record that cannot be decoded for its table (not JSON, no event_id or
// mql_id) is not lost: it is counted in
// leadscore_archive_undecodable_records_total, logged, and archived in
// dead_letters with reason "archive_undecodable" and its own topic,
// partition and offset as source.
//
// Files are zstd-compressed Parquet with snake_case columns. Timestamps
// are TIMESTAMP(MILLIS, isAdjustedToUTC=true). Columns whose value may be
// empty are optional and hold null for "" (or for a nil pointer / zero
// time); required columns are always set by the pipeline. Properties,
// traits and dead-letter headers are JSON text in optional string columns
// (parquet-go v0.32 panics writing optional JSON-typed columns). MQL
// contributors are a LIST of structs, which pyarrow, DuckDB and pandas
// read as such (bench/pyread/check_archive.py checks all three).
//
// # Segments and file names
//
// Each assigned partition has at most one open segment: its records from
// the first offset A to the last offset B, their rows streamed into one
// hidden temporary file per (table, dt) present, `.<name>.tmp` in the
// target directory. All files of a segment are named after A:
//
//	<topic>+<partition>+<A, 20 digits zero-padded>.parquet
//
// A segment is closed when it reaches Config.RollRecords records or
// Config.RollBytes input bytes, before a record whose Kafka timestamp is
// Config.RollInterval after the segment's first, after Config.FlushIdle of
// wall-clock time without a record, when its partition is revoked, and at
// shutdown. Closing writes each file's footer, fsyncs it, renames it to
// its final name and fsyncs the directories (new directories are fsynced
// into their parents when created); only then is offset B+1 committed
// for the partition, synchronously and in the current group generation.
//
// # Exactly once
//
// Every record of the archived topics appears in exactly one row, across
// crashes, restarts and rebalances, because:
//
//   - Under read_committed (kgo.FetchIsolationLevel(kgo.ReadCommitted())),
//     aborted records and transaction markers are never delivered. Offsets
//     therefore have gaps; a segment is named by its first real record's
//     offset and commits its last real record's offset + 1.
//   - Files become visible only by rename after fsync, and the commit
//     follows the directory fsync. A committed offset C thus means every
//     record before C is in a durable, complete file, and segment
//     boundaries coincide with committed offsets.
//   - When a partition is assigned (kgo.AdjustFetchOffsetsFn, before
//     consumption starts), C is its committed offset, or its log start
//     offset when nothing is committed (consumption then starts there).
//     Every file of that topic and partition whose first offset is >= C
//     is deleted, with every temporary file of the partition: they were
//     written after the last commit (a crash between rename and commit)
//     and their records are consumed again from C, so replays never
//     duplicate rows.
//   - Auto-commit is off. kgo.BlockRebalanceOnPoll keeps rebalances out
//     of the processing of a poll, and OnPartitionsRevoked closes and
//     commits a revoked partition's segment before the revoke completes,
//     so the next owner starts exactly at the boundary. A partition lost
//     without a revoke (session timeout) has its open segment dropped
//     unwritten; its next owner archives those records.
//   - A failed commit after the files are in place is counted
//     (leadscore_archive_commit_errors_total) and logged, not fatal. While
//     the archiver keeps the partition's lock (a cooperative rebalance
//     may give the partition back to a member the group had dropped,
//     without a revoke), it commits the same offset again after its next
//     poll, and a later segment's commit covers it too; once the
//     partition is revoked or lost, whoever consumes it next deletes and
//     rewrites the files. A failed write is fatal: Run removes
//     its temporary files, leaves the group and returns the error; the
//     uncommitted records are archived again on restart.
//
// Assumptions: only archivers of this group write under Dir (the cleanup
// trusts file names), and the group's committed offsets are only moved by
// the archiver. A topic deleted and created again under the same name
// starts its offsets over: the cleanup tells it by its topic id (a
// sidecar per partition in LockDir records the id its files were written
// from) and moves the old files to SupersededDir rather than deleting
// them, since their records are gone from Kafka. If the group's offsets expire and the log start has moved
// past a segment's first offset while the segment extends beyond it, that
// segment's tail is written twice.
//
// # Fencing
//
// Kafka fences a member's offset commits once it has lost a partition,
// not its file renames: an archiver that stalls (GC pause, SIGSTOP, a VM
// freeze, a slow disk) until the group gives its partitions to another
// would, on waking, write files that the new owner writes too. So each
// partition has a lock file, <Dir>/_locks/<topic>-<partition>.lock
// (LockDir; readers of the tables never look there), and an archiver
// holds an exclusive flock(2) on it for as long as it owns the partition:
//
//   - taken on assignment (kgo.AdjustFetchOffsetsFn) before anything else:
//     if another archiver holds it, the new owner tries again every
//     100 ms, logging the wait (with the holder's pid and host, written in
//     the file) when it starts and every 10 s, until the lock is free or
//     the group session ends; the group's heartbeats go on meanwhile;
//   - then the committed offset is read again, the uncommitted files are
//     removed and consumption starts;
//   - released on revoke after the partition's segment is closed and
//     committed, on loss after it is dropped and its temporary files are
//     removed, and when Run returns.
//
// A stalled owner keeps its locks, so the new owner waits; on waking, the
// stalled one may rename the file it was closing, its commit fails (stale
// generation), it learns it lost the partition, and only then releases
// the lock. The new owner then reads the committed offset, removes the
// late file with the other uncommitted ones and archives the records
// again. Commits are synchronous and made with the lock held, so the
// offset read after taking the lock is final until the new owner commits.
// flock is per open file description: two archivers in one process
// exclude each other too, and the kernel releases the locks of a process
// that dies, even by SIGKILL. A holder that is stopped and never resumed
// or killed blocks its partitions (leadscore_archive_lock_waiting_partitions
// shows it); that is the price of never writing a partition twice.
//
// The locks exclude the archivers of one host (one kernel), whatever the
// file system. Across hosts sharing a network file system they hold only
// as far as its locks do: Linux maps flock on NFS to NFS byte-range
// locks, which a client loses when it stalls past the server's lease
// (90 s by default for NFSv4), and many FUSE and SMB mounts do not share
// locks between clients at all; keep an archive directory on one host.
// Where Go's syscall package has no flock (Windows, Solaris, AIX, wasm)
// there is no fencing: Run logs a warning, and one archiver per directory
// is the only safe setup there.
//
// # Concurrency
//
// Run polls and handles records in one goroutine; the rebalance callbacks
// run on franz-go's group goroutine, the assignment callback on its
// offset-fetch goroutine. One mutex serializes them; a wait for a lock
// does not hold it.
// Parquet writing is single-threaded per archiver; scale out with more
// members of the group.
//
// # Metrics
//
// leadscore_archive_files_written_total{table},
// leadscore_archive_rows_written_total{table},
// leadscore_archive_bytes_written_total{table},
// leadscore_archive_write_seconds (segment close latency),
// leadscore_archive_undecodable_records_total{table},
// leadscore_archive_commit_errors_total,
// leadscore_archive_lock_wait_seconds_total (time assigned partitions
// waited for a lock held by another archiver, summed over partitions) and
// leadscore_archive_lock_waiting_partitions. Kafka client metrics come
// from a kprom hook passed in Config.Kafka.
package archive
