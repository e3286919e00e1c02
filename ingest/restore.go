package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/invariants"
	"github.com/leadscore/leadscore/scorer"
)

type restoreStats struct {
	records int64
	leads   int
}

// restore rebuilds one engine per partition from the state changelog.
//
// The changelog is read read_committed up to its end. A transaction still
// open on the changelog (the previous owner died or is finishing its last
// transaction) is waited out first, up to the transaction timeout plus a
// margin: restoring before it resolves could miss state whose offsets
// then commit. The broker aborts a timed-out transaction on a periodic
// sweep (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s
// by default), so the wait is the transaction timeout plus 30 s; past it
// the assignment fails rather than restore stale state.
func restore(ctx context.Context, cfg Config, log *slog.Logger, m *metrics, parts []int32) (map[int32]*scorer.Engine, restoreStats, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.RestoreTimeout)
	defer cancel()
	var stats restoreStats
	topic := cfg.Topics.State
	engines := make(map[int32]*scorer.Engine, len(parts))
	for _, part := range parts {
		engines[part] = scorer.NewEngine(cfg.Model)
	}

	cl, err := kgo.NewClient(append(slices.Clone(cfg.Kafka),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(250*time.Millisecond),
		// Large fetches: restore reads whole partitions as fast as it can.
		kgo.FetchMaxBytes(96<<20),
		kgo.FetchMaxPartitionBytes(32<<20),
	)...)
	if err != nil {
		return nil, stats, fmt.Errorf("client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	starts, ends, err := stableBounds(ctx, adm, topic, parts, cfg.TransactionTimeout+30*time.Second)
	if err != nil {
		return nil, stats, err
	}
	pending := make(map[int32]int64) // partition -> end offset still to reach
	offsets := make(map[int32]kgo.Offset)
	for _, part := range parts {
		if ends[part] > starts[part] {
			pending[part] = ends[part]
			offsets[part] = kgo.NewOffset().At(starts[part])
		}
	}
	if len(pending) == 0 {
		return engines, stats, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})

	lastProgress := time.Now()
	lastLog := time.Now()
	for len(pending) > 0 {
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			log.Info("restoring state", "changelog", topic, "records", stats.records, "partitions_left", len(pending))
		}
		pollCtx, pcancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		pcancel()
		if err := ctx.Err(); err != nil {
			return nil, stats, fmt.Errorf("changelog %s: %d partitions not restored in time: %w", topic, len(pending), err)
		}
		var ferr error
		fetches.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("changelog %s partition %d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return nil, stats, ferr
		}
		// Partitions restore in parallel: each engine is touched by one
		// goroutine only, and the poll loop waits for all before the next
		// poll.
		progressed := false
		var wg sync.WaitGroup
		var mu sync.Mutex
		var newer error // a record written by a newer release: fatal
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			end, ok := pending[fp.Partition]
			if !ok || len(fp.Records) == 0 {
				return
			}
			progressed = true
			first, last := fp.Records[0].Offset, fp.Records[len(fp.Records)-1].Offset
			final := last >= end-1
			if final {
				delete(pending, fp.Partition)
				cl.RemoveConsumePartitions(map[string][]int32{topic: {fp.Partition}})
			}
			eng := engines[fp.Partition]
			wg.Go(func() {
				growForRestore(eng, len(fp.Records), first, last, end)
				var n int64
				for _, r := range fp.Records {
					if r.Offset >= end {
						break
					}
					if r.Attrs.IsControl() {
						continue
					}
					n++
					if err := eng.Restore(string(r.Key), r.Value); errors.Is(err, scorer.ErrNewerState) {
						// Starting the lead afresh would throw away its
						// score and remembered ids: a newer release owns
						// this changelog, and this one must not run on it.
						mu.Lock()
						if newer == nil {
							newer = fmt.Errorf("changelog %s partition %d offset %d: %w (upgrade this instance; do not run older instances beside newer ones)",
								topic, fp.Partition, r.Offset, err)
						}
						mu.Unlock()
						return
					} else if err != nil {
						// A corrupt changelog record must not stop the
						// partition for good, nor be silently ignored.
						log.Error("changelog record not restorable; lead starts afresh",
							"partition", fp.Partition, "offset", r.Offset, "err", err)
						m.restoreErrors.Inc()
					} else if invariants.Enabled && len(r.Value) > 0 && r.Value[0] == scorer.StateVersion {
						// The state encoding is canonical: what was
						// restored encodes to the same bytes (an older
						// version's record encodes in the current one).
						if enc, ok := eng.EncodeLead(string(r.Key), nil); !ok || !bytes.Equal(enc, r.Value) {
							panic(fmt.Sprintf("ingest: lead %q at changelog offset %d does not re-encode to its record", r.Key, r.Offset))
						}
					}
				}
				if final {
					eng.Trim()
				}
				mu.Lock()
				stats.records += n
				mu.Unlock()
				m.restoredRecords.Add(float64(n))
			})
		})
		wg.Wait()
		if newer != nil {
			return nil, stats, newer
		}
		if progressed {
			lastProgress = time.Now()
		} else if time.Since(lastProgress) > 10*time.Second {
			// The records between the last one seen and the end offset were
			// all removed (compaction can remove an old transaction marker
			// at the tail of an idle partition): nothing is left to read.
			for part, end := range pending {
				log.Warn("changelog partition ends before its end offset; taking it as restored",
					"partition", part, "end_offset", end)
				delete(pending, part)
			}
		}
	}
	for _, eng := range engines {
		stats.leads += eng.Len()
	}
	m.restoredLeads.Add(float64(stats.leads))
	return engines, stats, nil
}

// stableBounds returns the start and end offsets of the changelog
// partitions once no transaction is open on them (last stable offset equals
// the high watermark), waiting at most wait.
func stableBounds(ctx context.Context, adm *kadm.Client, topic string, parts []int32, wait time.Duration) (starts, ends map[int32]int64, err error) {
	deadline := time.Now().Add(wait)
	starts, ends = make(map[int32]int64), make(map[int32]int64)
	for {
		so, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = so.Error()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("changelog %s start offsets: %w", topic, err)
		}
		hwm, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = hwm.Error()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("changelog %s end offsets: %w", topic, err)
		}
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = lso.Error()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("changelog %s stable offsets: %w", topic, err)
		}
		stable := true
		for _, part := range parts {
			s, ok1 := so.Lookup(topic, part)
			h, ok2 := hwm.Lookup(topic, part)
			l, ok3 := lso.Lookup(topic, part)
			if !ok1 || !ok2 || !ok3 {
				return nil, nil, fmt.Errorf("changelog %s has no partition %d: it must have as many partitions as the input topic", topic, part)
			}
			starts[part], ends[part] = s.Offset, l.Offset
			if l.Offset < h.Offset {
				stable = false
			}
		}
		if stable {
			return starts, ends, nil
		}
		if time.Now().After(deadline) {
			// Restoring now could miss state whose offsets the open
			// transaction may still commit: fail the assignment instead.
			return nil, nil, fmt.Errorf("changelog %s: a transaction is still open after %v (an instance with a longer transaction timeout?)", topic, wait)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// growForRestore makes room in eng, before it restores a fetch of n
// records at offsets first..last of a partition restored up to end, for
// the leads they may add. When it must grow, the lead table at least
// doubles, so that a table growing to N leads copies about N leads in all
// instead of about 4N (append grows a large slice by a quarter at a time,
// copying it whole each time), but it does not grow past an estimate of
// the records the partition still holds: this fetch's records per offset
// (offsets also number transaction markers and, in a compacted log, the
// gaps left by compaction) times the offsets left. A record may update a
// lead rather than add one, so the table may still end too large: restore
// calls Trim after the partition's last fetch.
func growForRestore(eng *scorer.Engine, n int, first, last, end int64) {
	if n <= 0 || eng.Room() >= n {
		return
	}
	left := n
	if last < end-1 && last >= first {
		perOffset := float64(n) / float64(last-first+1)
		left = max(left, int(perOffset*float64(end-first)))
	}
	eng.Grow(min(max(eng.Len(), n), left))
}
