package archive

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/leadscore/leadscore/scorer"
)

// Defaults of Config.
const (
	DefaultGroup        = "leadscore-archiver"
	DefaultScoredTopic  = "leadscore.scored"
	DefaultMQLTopic     = "leadscore.mql"
	DefaultDLQTopic     = "leadscore.dlq"
	DefaultRollRecords  = 100_000
	DefaultRollBytes    = 64 << 20
	DefaultRollInterval = 10 * time.Minute
	DefaultFlushIdle    = 30 * time.Second
)

// Config configures an Archiver.
type Config struct {
	// Kafka holds the client options from main: seed brokers, TLS, SASL,
	// hooks (kprom). Required. The archiver adds the consumer-group
	// options itself.
	Kafka []kgo.Opt
	// Group is the consumer group. Default "leadscore-archiver".
	Group string
	// ScoredTopic, MQLTopic and DLQTopic are the topics archived into the
	// touchpoints, mql and dead_letters tables. Defaults
	// "leadscore.scored", "leadscore.mql" and "leadscore.dlq"; all three
	// are always archived and must differ.
	ScoredTopic, MQLTopic, DLQTopic string
	// Dir is the archive's root directory. Required; created if missing.
	Dir string
	// RollRecords closes a partition's segment after this many records.
	// Default 100000.
	RollRecords int
	// RollBytes closes a partition's segment after this many bytes of
	// input records (key, value and headers). Default 64 MiB.
	RollBytes int64
	// RollInterval closes a partition's segment before a record whose
	// Kafka timestamp is this far after the segment's first record's.
	// Default 10m.
	RollInterval time.Duration
	// FlushIdle closes a partition's segment after this much wall-clock
	// time without a new record for it. Default 30s.
	FlushIdle time.Duration
	// SessionTimeout is the consumer group session timeout: how long a
	// crashed archiver holds its partitions. Default 45s.
	SessionTimeout time.Duration
	// InstanceID, when set, makes the archiver a static group member: a
	// restart with the same id takes its partitions back without a
	// rebalance. Default: dynamic membership.
	InstanceID string
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the archive's metrics. Default: not registered.
	Registerer prometheus.Registerer
}

// Validate reports the first invalid field of c. Zero values are valid
// (they select the defaults) except for the required Kafka and Dir.
func (c *Config) Validate() error {
	switch {
	case len(c.Kafka) == 0:
		return errors.New("archive: Config.Kafka: required")
	case c.Dir == "":
		return errors.New("archive: Config.Dir: required")
	case c.RollRecords < 0:
		return fmt.Errorf("archive: Config.RollRecords: %d is negative", c.RollRecords)
	case c.RollBytes < 0:
		return fmt.Errorf("archive: Config.RollBytes: %d is negative", c.RollBytes)
	case c.RollInterval < 0:
		return fmt.Errorf("archive: Config.RollInterval: %v is negative", c.RollInterval)
	case c.FlushIdle < 0:
		return fmt.Errorf("archive: Config.FlushIdle: %v is negative", c.FlushIdle)
	}
	d := *c
	d.setDefaults()
	if d.ScoredTopic == d.MQLTopic || d.ScoredTopic == d.DLQTopic {
		return fmt.Errorf("archive: Config.ScoredTopic: %q is also another table's topic", d.ScoredTopic)
	}
	if d.MQLTopic == d.DLQTopic {
		return fmt.Errorf("archive: Config.MQLTopic: %q is also the DLQ topic", d.MQLTopic)
	}
	return nil
}

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Group, DefaultGroup)
	def(&c.ScoredTopic, DefaultScoredTopic)
	def(&c.MQLTopic, DefaultMQLTopic)
	def(&c.DLQTopic, DefaultDLQTopic)
	if c.RollRecords == 0 {
		c.RollRecords = DefaultRollRecords
	}
	if c.RollBytes == 0 {
		c.RollBytes = DefaultRollBytes
	}
	if c.RollInterval == 0 {
		c.RollInterval = DefaultRollInterval
	}
	if c.FlushIdle == 0 {
		c.FlushIdle = DefaultFlushIdle
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Archiver consumes the pipeline's output topics and writes them to
// Parquet. See the package documentation for its guarantees.
type Archiver struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	source map[string]string // topic -> table its records belong to

	mu    sync.Mutex // guards everything below
	cl    *kgo.Client
	segs  map[topicPartition]*segment
	locks map[topicPartition]*partitionLock // partitions this archiver may write
	// uncommitted holds, per partition, the offset after the last segment
	// whose files are in place but whose commit failed (the group had
	// moved to a new generation): committed again once the archiver is
	// back in the group and still owns the partition (see
	// commitUncommitted), forgotten when the partition is revoked or lost.
	uncommitted map[topicPartition]kgo.EpochOffset
	started     bool
	fatal       error

	// beforeCommit, when set (tests), runs after a segment's files are in
	// place and before its offset is committed; an error is fatal, as a
	// crash at that point would be.
	beforeCommit func(topic string, partition int32) error
	// stall, when set (tests), runs with a.mu held at two points of Run's
	// goroutine: "append", before a poll's records of a partition are
	// handled, and "rename", before the first file of a closing segment
	// is renamed. A test blocks in it to play an archiver that stalls
	// there (GC pause, SIGSTOP).
	stall func(point, topic string, partition int32)
}

// New validates cfg and returns an Archiver; it does not connect.
func New(cfg Config) (*Archiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	cfg.Kafka = slices.Clone(cfg.Kafka)
	return &Archiver{
		cfg: cfg,
		log: cfg.Logger.With("component", "archive"),
		m:   newMetrics(cfg.Registerer),
		source: map[string]string{
			cfg.ScoredTopic: TableTouchpoints,
			cfg.MQLTopic:    TableMQL,
			cfg.DLQTopic:    TableDeadLetters,
		},
		segs:        make(map[topicPartition]*segment),
		locks:       make(map[topicPartition]*partitionLock),
		uncommitted: make(map[topicPartition]kgo.EpochOffset),
	}, nil
}

// errAlreadyRun is returned by a second call of Run.
var errAlreadyRun = errors.New("archive: Run called twice")

// maxPollRecords bounds the records handled between two rebalance
// windows.
const maxPollRecords = 10_000

// maxPollWait bounds one poll, so that idle segments are flushed and
// errors raised in rebalance callbacks are noticed.
const maxPollWait = time.Second

// Run consumes and archives until ctx is canceled, then closes and
// commits every open segment, leaves the group and returns nil. It returns
// an error if the client cannot be created or a file cannot be written
// (after removing its open segments' temporary files and leaving the
// group; the uncommitted records are archived again on restart). Run may
// be called once.
func (a *Archiver) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errAlreadyRun
	}
	a.started = true
	a.mu.Unlock()

	if err := ensureDir(a.cfg.Dir, a.cfg.Dir); err != nil {
		return err
	}
	opts := append(slices.Clip(a.cfg.Kafka),
		kgo.ConsumerGroup(a.cfg.Group),
		kgo.ConsumeTopics(a.cfg.ScoredTopic, a.cfg.MQLTopic, a.cfg.DLQTopic),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(a.onFetchOffsets),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
	)
	if a.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(a.cfg.SessionTimeout))
	}
	if a.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(a.cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("archive: kafka client: %w", err)
	}
	a.mu.Lock()
	a.cl = cl
	a.mu.Unlock()
	a.log.Info("archiver started", "group", a.cfg.Group, "dir", a.cfg.Dir,
		"topics", []string{a.cfg.ScoredTopic, a.cfg.MQLTopic, a.cfg.DLQTopic})
	if !fencingAvailable {
		a.log.Warn("no flock(2) on this platform: archivers sharing this directory are not fenced; run one archiver per directory",
			"dir", a.cfg.Dir)
	}

	for {
		pollCtx, cancel := context.WithTimeout(ctx, a.pollWait())
		fetches := cl.PollRecords(pollCtx, maxPollRecords)
		cancel()

		a.mu.Lock()
		if a.fatal == nil && len(a.uncommitted) > 0 && ctx.Err() == nil {
			a.commitUncommitted(ctx)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if errors.Is(err, kgo.ErrClientClosed) {
				a.setFatal(fmt.Errorf("archive: poll: %w", err))
				return
			}
			a.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		})
		if a.fatal == nil {
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				if a.fatal != nil || len(p.Records) == 0 {
					return
				}
				if a.locks[topicPartition{p.Topic, p.Partition}] == nil {
					// Never expected: kgo starts a partition only after
					// onFetchOffsets took its lock and drops its buffered
					// records before onRevoked and onLost release it.
					// Stopping replays from the committed offsets.
					a.setFatal(fmt.Errorf("archive: records of %s/%d, whose archive lock this archiver does not hold", p.Topic, p.Partition))
					return
				}
				if a.stall != nil {
					a.stall("append", p.Topic, p.Partition)
				}
				a.setFatal(a.appendRecords(ctx, p.Topic, p.Partition, p.Records))
			})
		}
		if a.fatal == nil {
			a.setFatal(a.flushIdle(ctx, time.Now()))
		}
		fatal := a.fatal
		if fatal == nil && ctx.Err() != nil {
			// Graceful stop: close every open segment while we still own
			// its partition.
			a.setFatal(a.closeAll(context.WithoutCancel(ctx)))
			fatal = a.fatal
		}
		if fatal != nil {
			a.abortAll()
		}
		a.mu.Unlock()
		cl.AllowRebalance()

		if fatal != nil || ctx.Err() != nil {
			cl.Close() // leaves the group; onRevoked finds no segments and releases the locks
			a.mu.Lock()
			a.releaseAll()
			a.mu.Unlock()
			if fatal != nil {
				a.log.Error("archiver stopped", "err", fatal)
				return fatal
			}
			a.log.Info("archiver stopped")
			return nil
		}
	}
}

// setFatal records the first fatal error; a.mu held.
func (a *Archiver) setFatal(err error) {
	if err != nil && a.fatal == nil {
		a.fatal = err
	}
}

// pollWait is how long the next poll may block: until the earliest idle
// deadline, at most maxPollWait.
func (a *Archiver) pollWait() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	wait := maxPollWait
	now := time.Now()
	for _, s := range a.segs {
		if d := s.lastAppend.Add(a.cfg.FlushIdle).Sub(now); d < wait {
			wait = d
		}
	}
	return max(wait, time.Millisecond)
}

// segment is the open segment of one partition: records first..last,
// their rows buffered in temporary Parquet files, one per (table, dt).
type segment struct {
	tp          topicPartition
	first, last int64
	lastEpoch   int32
	records     int
	bytes       int64
	firstTime   time.Time // Kafka timestamp of the first record
	lastAppend  time.Time // wall clock
	files       map[fileKey]rowFile
	order       []fileKey
}

type fileKey struct{ table, dt string }

// appendRecords adds records (one partition, in offset order) to the
// partition's segment, closing segments as the roll limits say; a.mu held.
func (a *Archiver) appendRecords(ctx context.Context, topic string, partition int32, recs []*kgo.Record) error {
	tp := topicPartition{topic, partition}
	now := time.Now()
	for _, r := range recs {
		s := a.segs[tp]
		if s != nil && r.Timestamp.Sub(s.firstTime) >= a.cfg.RollInterval {
			if err := a.closeSegment(ctx, s); err != nil {
				return err
			}
			s = nil
		}
		if s == nil {
			s = &segment{tp: tp, first: r.Offset, firstTime: r.Timestamp, files: make(map[fileKey]rowFile)}
			a.segs[tp] = s
		}
		if err := a.addRecord(s, r); err != nil {
			return err
		}
		s.last, s.lastEpoch = r.Offset, r.LeaderEpoch
		s.records++
		s.bytes += recordBytes(r)
		s.lastAppend = now
		if s.records >= a.cfg.RollRecords || s.bytes >= a.cfg.RollBytes {
			if err := a.closeSegment(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func recordBytes(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// addRecord decodes r into a row of its table (or a dead letter when it
// cannot be decoded) and adds it to the segment's file for the row's dt.
func (a *Archiver) addRecord(s *segment, r *kgo.Record) error {
	table := a.source[r.Topic]
	switch table {
	case TableTouchpoints:
		var row TouchpointRow
		err := row.UnmarshalJSON(r.Value)
		if err == nil && row.EventID == "" {
			err = errors.New("archive: touchpoint: event_id missing")
		}
		if err != nil {
			return a.addUndecodable(s, table, r, err)
		}
		return addRow(a, s, table, row.OccurredAt, row)
	case TableMQL:
		var m scorer.MQL
		err := json.Unmarshal(r.Value, &m)
		if err == nil && (m.MQLID == "" || m.QualifiedAt.IsZero()) {
			err = errors.New("archive: mql: mql_id or qualified_at missing")
		}
		if err != nil {
			return a.addUndecodable(s, table, r, fmt.Errorf("archive: mql: %w", err))
		}
		row := MQLRowFrom(&m)
		return addRow(a, s, table, row.QualifiedAt, row)
	default:
		row := deadLetterFrom(r)
		return addRow(a, s, TableDeadLetters, row.DeadLetteredAt, row)
	}
}

func (a *Archiver) addUndecodable(s *segment, table string, r *kgo.Record, err error) error {
	a.m.undecodable.WithLabelValues(table).Inc()
	a.log.Warn("undecodable record archived as dead letter", "table", table,
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
	row := DeadLetterRow{
		Value:           r.Value,
		Reason:          ReasonUndecodable,
		Detail:          err.Error(),
		SourceTopic:     r.Topic,
		SourcePartition: &r.Partition,
		SourceOffset:    &r.Offset,
		DeadLetteredAt:  millis(r.Timestamp),
		Headers:         headersJSON(r.Headers, noSkip),
	}
	row.setKey(r.Key)
	return addRow(a, s, TableDeadLetters, row.DeadLetteredAt, row)
}

// deadLetterFrom maps a DLQ record to its row. The pipeline appends its
// headers after the record's own, so the last header of each dead-letter
// name is the pipeline's; an earlier one (a record that had been dead-lettered
// before and was produced again, or a producer's own header of that name)
// belongs to the original record and stays in Headers.
func deadLetterFrom(r *kgo.Record) DeadLetterRow {
	ours := dlqHeaderIndexes(r.Headers)
	row := DeadLetterRow{
		Value:          r.Value,
		DeadLetteredAt: millis(r.Timestamp),
		Headers:        headersJSON(r.Headers, ours),
	}
	row.setKey(r.Key)
	for _, i := range ours {
		if i < 0 {
			continue
		}
		h := r.Headers[i]
		switch h.Key {
		case HeaderReason:
			row.Reason = string(h.Value)
		case HeaderDetail:
			row.Detail = string(h.Value)
		case HeaderSourceTopic:
			row.SourceTopic = string(h.Value)
		case HeaderSourcePartition:
			if p, err := strconv.ParseInt(string(h.Value), 10, 32); err == nil {
				p32 := int32(p)
				row.SourcePartition = &p32
			}
		case HeaderSourceOffset:
			if o, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				row.SourceOffset = &o
			}
		}
	}
	return row
}

// noSkip leaves out no header.
var noSkip = dlqHeaderIndexes(nil)

// dlqHeaderNames are the dead-letter headers mapped to columns.
var dlqHeaderNames = [...]string{HeaderReason, HeaderDetail, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset}

// dlqHeaderIndexes returns the index of the last header of each of
// dlqHeaderNames in hs, -1 where there is none.
func dlqHeaderIndexes(hs []kgo.RecordHeader) [len(dlqHeaderNames)]int {
	var idx [len(dlqHeaderNames)]int
	for j := range idx {
		idx[j] = -1
	}
	for i, h := range hs {
		for j, name := range dlqHeaderNames {
			if h.Key == name {
				idx[j] = i
			}
		}
	}
	return idx
}

// headersJSON renders headers as documented on DeadLetterRow.Headers,
// leaving out the headers at the indexes in skip (-1: none).
func headersJSON(hs []kgo.RecordHeader, skip [len(dlqHeaderNames)]int) string {
	var b []byte
	for i, h := range hs {
		if slices.Contains(skip[:], i) {
			continue
		}
		if b == nil {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = appendString(b, h.Key)
		if utf8.Valid(h.Value) {
			b = append(b, `,"value":`...)
			b = appendString(b, string(h.Value))
		} else {
			b = append(b, `,"value_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, h.Value)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	if b == nil {
		return ""
	}
	return string(append(b, ']'))
}

// addRow adds row to the segment's file of table for the UTC date of t,
// creating the file (and its directories) on first use.
func addRow[T any](a *Archiver, s *segment, table string, t time.Time, row T) error {
	k := fileKey{table, "dt=" + t.UTC().Format(time.DateOnly)}
	f, ok := s.files[k]
	if !ok {
		dir := filepath.Join(a.cfg.Dir, table, k.dt)
		if err := ensureDir(a.cfg.Dir, dir); err != nil {
			return err
		}
		pf, err := createParquetFile[T](table, dir, FileName(s.tp.topic, s.tp.partition, s.first), a.cfg.RollRecords)
		if err != nil {
			return err
		}
		s.files[k] = pf
		s.order = append(s.order, k)
		f = pf
	}
	return f.(*parquetFile[T]).add(row)
}

// closeSegment makes the segment's files visible (finish, fsync, rename,
// fsync dir) and then commits the offset after its last record. It
// removes the segment. An error writing files is returned (fatal); a
// commit error is logged and counted: the files stay, and if the
// partition moved, its new owner removes and rewrites them. a.mu held.
func (a *Archiver) closeSegment(ctx context.Context, s *segment) error {
	delete(a.segs, s.tp)
	start := time.Now()
	dirs := make(map[string]struct{}, len(s.order))
	type done struct {
		table      string
		rows, size int64
	}
	written := make([]done, 0, len(s.order))
	for i, k := range s.order {
		f := s.files[k]
		size, err := f.finish()
		if err == nil && i == 0 && a.stall != nil {
			a.stall("rename", s.tp.topic, s.tp.partition)
		}
		if err == nil {
			tmp, final := f.paths()
			if err = renameFile(tmp, final); err == nil {
				dirs[filepath.Dir(final)] = struct{}{}
				written = append(written, done{f.table(), f.rows(), size})
				continue
			}
		}
		for _, rest := range s.order[i:] {
			s.files[rest].abort()
		}
		return err
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	a.m.writeSeconds.Observe(time.Since(start).Seconds())
	for _, w := range written {
		a.m.filesWritten.WithLabelValues(w.table).Inc()
		a.m.rowsWritten.WithLabelValues(w.table).Add(float64(w.rows))
		a.m.bytesWritten.WithLabelValues(w.table).Add(float64(w.size))
	}
	if a.beforeCommit != nil {
		if err := a.beforeCommit(s.tp.topic, s.tp.partition); err != nil {
			return err
		}
	}
	at := kgo.EpochOffset{Epoch: s.lastEpoch, Offset: s.last + 1}
	if err := a.commit(ctx, s.tp, at); err != nil {
		a.m.commitErrors.Inc()
		a.uncommitted[s.tp] = at
		a.log.Warn("offset commit failed; committed again if this archiver keeps the partition, else its next owner rewrites the segment",
			"topic", s.tp.topic, "partition", s.tp.partition, "first", s.first, "last", s.last, "err", err)
	} else {
		delete(a.uncommitted, s.tp)
		a.log.Debug("segment archived", "topic", s.tp.topic, "partition", s.tp.partition,
			"first", s.first, "last", s.last, "records", s.records, "files", len(written))
	}
	return nil
}

func renameFile(tmp, final string) error {
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("archive: rename %s: %w", tmp, err)
	}
	return nil
}

// commit synchronously commits at for tp in the current group generation.
func (a *Archiver) commit(ctx context.Context, tp topicPartition, at kgo.EpochOffset) error {
	offsets := map[string]map[int32]kgo.EpochOffset{tp.topic: {tp.partition: at}}
	var rerr error
	a.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = err
				}
			}
		}
	})
	if rerr != nil {
		return fmt.Errorf("archive: commit %s/%d@%d: %w", tp.topic, tp.partition, at.Offset, rerr)
	}
	return nil
}

// commitUncommitted commits again the segments whose commit failed (all
// of partitions this archiver still holds: releaseLock forgets the
// others); a.mu held, between polls (no rebalance runs). A commit fails when the group dropped the archiver
// (it stalled past the rebalance timeout) and moved on; a cooperative
// rebalance may then give the archiver back the same partitions without
// revoking them, so no other archiver rewrites those segments, and the
// client's position is past them. Their files stayed in place under the
// partition's lock, which was held throughout (a revoke or a loss
// releases it and forgets the offset here), so committing after them is
// what a successful commit would have done. A failure is tried again
// after the next poll.
func (a *Archiver) commitUncommitted(ctx context.Context) {
	for tp, at := range a.uncommitted {
		if err := a.commit(ctx, tp, at); err != nil {
			a.log.Debug("commit after a failed one failed again; retrying after the next poll",
				"topic", tp.topic, "partition", tp.partition, "offset", at.Offset, "err", err)
			continue
		}
		delete(a.uncommitted, tp)
		a.log.Info("committed after a failed commit: the partition stayed with this archiver",
			"topic", tp.topic, "partition", tp.partition, "offset", at.Offset)
	}
}

// flushIdle closes segments without a new record for FlushIdle; a.mu held.
func (a *Archiver) flushIdle(ctx context.Context, now time.Time) error {
	for _, s := range a.sortedSegments() {
		if now.Sub(s.lastAppend) >= a.cfg.FlushIdle {
			if err := a.closeSegment(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeAll closes every open segment; a.mu held.
func (a *Archiver) closeAll(ctx context.Context) error {
	for _, s := range a.sortedSegments() {
		if err := a.closeSegment(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// abortAll drops every open segment, removing its temporary files; a.mu
// held.
func (a *Archiver) abortAll() {
	for tp, s := range a.segs {
		s.abort()
		delete(a.segs, tp)
	}
}

func (s *segment) abort() {
	for _, k := range s.order {
		s.files[k].abort()
	}
}

func (a *Archiver) sortedSegments() []*segment {
	out := make([]*segment, 0, len(a.segs))
	for _, s := range a.segs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *segment) int { return compareTP(x.tp, y.tp) })
	return out
}

// onRevoked closes and commits the segments of revoked partitions before
// the rebalance completes (kgo calls it from the group goroutine, never
// while Run handles a poll, thanks to BlockRebalanceOnPoll), then
// releases their locks: nothing more is written for them.
func (a *Archiver) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, parts := range revoked {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if s := a.segs[tp]; s != nil {
				if a.fatal != nil {
					delete(a.segs, s.tp)
					s.abort()
				} else {
					a.setFatal(a.closeSegment(ctx, s))
					if a.fatal != nil {
						a.abortAll()
					}
				}
			}
			a.releaseLock(tp)
		}
	}
}

// onLost drops the segments of partitions lost without a clean revoke
// (removing their temporary files) and then releases their locks:
// another member may own them already, so nothing is written or
// committed; the new owner archives those records.
func (a *Archiver) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, parts := range lost {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if s := a.segs[tp]; s != nil {
				delete(a.segs, tp)
				s.abort()
				a.log.Warn("partition lost; open segment dropped", "topic", topic, "partition", p,
					"first", s.first, "last", s.last)
			}
			a.releaseLock(tp)
		}
	}
}

// releaseLock releases the lock of tp if this archiver holds it; a.mu
// held, and tp must have no open segment.
func (a *Archiver) releaseLock(tp topicPartition) {
	delete(a.uncommitted, tp) // its next owner rewrites from the committed offset
	if l := a.locks[tp]; l != nil {
		delete(a.locks, tp)
		l.release()
		a.log.Debug("archive lock released", "topic", tp.topic, "partition", tp.partition)
	}
}

// releaseAll releases every lock; a.mu held, no open segment.
func (a *Archiver) releaseAll() {
	for tp := range a.locks {
		a.releaseLock(tp)
	}
}

// onFetchOffsets runs when partitions are assigned, after kgo fetched
// their committed offsets and before consumption starts; kgo calls it
// from its offset-fetch goroutine while the group's heartbeats go on in
// another, and cancels ctx when the session ends (a rebalance, Close).
// For each partition it
//
//  1. takes the partition's lock, waiting while another archiver (a
//     previous owner that has not yet learned it lost the partition)
//     holds it;
//  2. reads the committed offset again, now that no one else can commit
//     or write for the partition, and resolves the offset C consumption
//     starts at (the committed offset, or the log start offset when none
//     is committed);
//  3. removes the files of that partition whose first offset is >= C,
//     and its temporary files.
//
// On error the locks taken here are released and kgo retries the
// assignment in its next session.
func (a *Archiver) onFetchOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var tps []topicPartition
	for topic, parts := range offsets {
		for p := range parts {
			tps = append(tps, topicPartition{topic, p})
		}
	}
	slices.SortFunc(tps, compareTP)
	a.mu.Lock()
	cl := a.cl
	var need []topicPartition
	for _, tp := range tps {
		if a.locks[tp] == nil {
			need = append(need, tp)
		}
	}
	a.mu.Unlock()

	got, err := a.lockPartitions(ctx, need)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	for tp, l := range got {
		a.locks[tp] = l
	}
	a.mu.Unlock()
	offsets, err = a.cleanAssigned(ctx, cl, tps, offsets)
	if err != nil {
		a.mu.Lock()
		for tp := range got {
			a.releaseLock(tp)
		}
		a.mu.Unlock()
		return nil, err
	}
	return offsets, nil
}

func compareTP(x, y topicPartition) int {
	if c := strings.Compare(x.topic, y.topic); c != 0 {
		return c
	}
	return int(x.partition - y.partition)
}

// cleanAssigned is steps 2 and 3 of onFetchOffsets, with the locks of
// tps held.
func (a *Archiver) cleanAssigned(ctx context.Context, cl *kgo.Client, tps []topicPartition, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	adm := kadm.NewClient(cl)
	// kgo fetched the offsets before the locks were ours; a previous
	// owner may have committed since (it could not have after releasing).
	committed, err := adm.FetchOffsets(ctx, a.cfg.Group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		a.log.Warn("fetching committed offsets failed; rejoining", "err", err)
		return nil, fmt.Errorf("archive: fetch committed offsets: %w", err)
	}
	for _, tp := range tps {
		o, ok := committed.Lookup(tp.topic, tp.partition)
		if !ok || o.At < 0 {
			continue
		}
		if prev := offsets[tp.topic][tp.partition].EpochOffset().Offset; prev != o.At {
			a.log.Info("committed offset moved before the archive lock was taken; starting from it",
				"topic", tp.topic, "partition", tp.partition, "fetched", prev, "committed", o.At)
			offsets[tp.topic][tp.partition] = kgo.NewOffset().At(o.At).WithEpoch(o.LeaderEpoch)
		}
	}

	from := make(map[topicPartition]int64)
	uncommitted := make(map[topicPartition]bool)
	var unresolved []string
	for _, tp := range tps {
		if at := offsets[tp.topic][tp.partition].EpochOffset().Offset; at >= 0 {
			from[tp] = at
			continue
		}
		uncommitted[tp] = true
		if !slices.Contains(unresolved, tp.topic) {
			unresolved = append(unresolved, tp.topic)
		}
	}
	if len(unresolved) > 0 {
		starts, err := adm.ListStartOffsets(ctx, unresolved...)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			a.log.Warn("listing start offsets failed; rejoining", "err", err)
			return nil, fmt.Errorf("archive: list start offsets: %w", err)
		}
		for _, tp := range tps {
			if _, ok := from[tp]; ok {
				continue
			}
			lo, ok := starts.Lookup(tp.topic, tp.partition)
			if !ok {
				return nil, fmt.Errorf("archive: list start offsets: %s/%d missing", tp.topic, tp.partition)
			}
			from[tp] = lo.Offset
			offsets[tp.topic][tp.partition] = kgo.NewOffset().At(lo.Offset)
		}
	}

	a.mu.Lock()
	for _, tp := range tps {
		// Not expected (kgo starts a partition only after this
		// returns), but a segment left over from an earlier assignment
		// would now be rewritten from C.
		if s := a.segs[tp]; s != nil {
			delete(a.segs, tp)
			s.abort()
		}
	}
	a.mu.Unlock()
	ids, err := topicIDs(ctx, adm, tps)
	if err != nil {
		a.log.Warn("listing topic ids failed; rejoining", "err", err)
		return nil, err
	}
	recreated, err := recreatedPartitions(a.cfg.Dir, tps, ids, uncommitted)
	if err == nil {
		for tp, was := range recreated {
			a.log.Warn("topic deleted and created again since its files were written: moving them aside, out of the tables",
				"topic", tp.topic, "partition", tp.partition, "old_topic_id", was, "new_topic_id", ids[tp.topic],
				"to", filepath.Join(a.cfg.Dir, SupersededDir, was))
		}
		var removed, moved []string
		removed, moved, err = removeUncommitted(a.cfg.Dir, from, recreated)
		for _, path := range removed {
			a.log.Info("removed file written after the last commit; its records will be archived again", "path", path)
		}
		for _, path := range moved {
			a.log.Warn("moved the file of a recreated topic aside", "path", path, "to", SupersededDir)
		}
	}
	if err == nil {
		// Only once the old files are out of the way: a crash before
		// this finds the old id again and moves what is left.
		err = recordTopicIDs(a.cfg.Dir, tps, ids)
	}
	if err != nil {
		a.mu.Lock()
		a.setFatal(err)
		a.mu.Unlock()
		return nil, err
	}
	return offsets, nil
}
