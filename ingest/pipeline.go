package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/invariants"
	"github.com/leadscore/leadscore/models"
)

// Default topic names.
const (
	DefaultTouchpointsTopic = "leadscore.touchpoints"
	DefaultMQLTopic         = "leadscore.mql"
	DefaultDLQTopic         = "leadscore.dlq"
	DefaultStateTopic       = "leadscore.state"
	DefaultScoredTopic      = "leadscore.scored"
)

// Topics names the pipeline's topics.
type Topics struct {
	// Touchpoints is the input. Default "leadscore.touchpoints".
	Touchpoints string
	// MQL receives MQL events. Default "leadscore.mql".
	MQL string
	// DLQ receives dead letters. Default "leadscore.dlq".
	DLQ string
	// State is the compacted changelog of lead state, partitioned like
	// Touchpoints. Default "leadscore.state".
	State string
	// Scored receives one record per scored touchpoint, for the archive,
	// partitioned like Touchpoints. Default "leadscore.scored".
	Scored string
}

func (t *Topics) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&t.Touchpoints, DefaultTouchpointsTopic)
	def(&t.MQL, DefaultMQLTopic)
	def(&t.DLQ, DefaultDLQTopic)
	def(&t.State, DefaultStateTopic)
	def(&t.Scored, DefaultScoredTopic)
}

func (t *Topics) validate() error {
	names := []string{t.Touchpoints, t.MQL, t.DLQ, t.State, t.Scored}
	for i, n := range names {
		if slices.Contains(names[i+1:], n) {
			return fmt.Errorf("ingest: Config.Topics: topic %q is used twice", n)
		}
	}
	return nil
}

// Config configures a Pipeline. Only main fills it.
type Config struct {
	// Kafka holds the client options for the cluster: seed brokers, TLS,
	// SASL, client id. Required.
	Kafka []kgo.Opt
	// Hooks are attached to the main client only (not to the short-lived
	// restore clients): a kprom.Metrics, for one, serves one client.
	Hooks []kgo.Hook
	// Group is the consumer group the scorers share. Default "leadscore".
	Group string
	// TransactionalID identifies this instance's transactional producer.
	// Two live instances must never share one; a restarted instance that
	// reuses its id fences its own zombie at once. Default
	// "leadscore-<hostname>".
	TransactionalID string
	// InstanceID, when set, makes this instance a static member of the
	// group: restarted with the same id (after a crash or a deploy) it
	// takes its partitions back without a rebalance. A static member that
	// stops for good holds its partitions until SessionTimeout. Default:
	// dynamic membership.
	InstanceID string
	// SessionTimeout is the group session timeout: how long the partitions
	// of a crashed instance wait before another takes them. Default 45s.
	SessionTimeout time.Duration
	// Topics names the topics; see Topics for the defaults.
	Topics Topics
	// Model is the scoring model. Required.
	Model *models.Model
	// Decoder configures decoding of touchpoints. Its PropertyKeys and
	// FitTraits default to the model's.
	Decoder DecoderConfig
	// CommitInterval is how long a transaction stays open: MQL events,
	// changelog and input offsets become visible to read_committed
	// consumers at most this long after the touchpoint is read.
	// Default 100ms.
	CommitInterval time.Duration
	// MaxPollRecords bounds one poll. Default 10000.
	MaxPollRecords int
	// TransactionTimeout is the broker-side timeout of a transaction: an
	// instance that dies mid-transaction blocks its partitions' readers
	// for at most this long. Default 10s.
	TransactionTimeout time.Duration
	// RestoreTimeout bounds restoring one assignment's state from the
	// changelog. Default 5m.
	RestoreTimeout time.Duration
	// ShutdownTimeout bounds the final commit on shutdown. Default 30s.
	ShutdownTimeout time.Duration
	// Clock is the wall clock (future check, emitted_at). Default time.Now.
	Clock func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Default: none (not registered).
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Group == "" {
		c.Group = "leadscore"
	}
	if c.TransactionalID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.TransactionalID = "leadscore-" + host
	}
	c.Topics.setDefaults()
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 10000
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 10 * time.Second
	}
	if c.RestoreTimeout == 0 {
		c.RestoreTimeout = 5 * time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Model != nil && c.Decoder.PropertyKeys == nil {
		c.Decoder.PropertyKeys = c.Model.PropertyKeys()
	}
	if c.Model != nil && c.Decoder.FitTraits == nil {
		c.Decoder.FitTraits = c.Model.TraitKeys()
	}
}

// Validate fills defaults and reports the first bad field.
func (c *Config) Validate() error {
	c.setDefaults()
	switch {
	case len(c.Kafka) == 0:
		return errors.New("ingest: Config.Kafka: no client options (seed brokers are required)")
	case c.Model == nil:
		return errors.New("ingest: Config.Model: required")
	case c.CommitInterval < time.Millisecond:
		return fmt.Errorf("ingest: Config.CommitInterval: %v is below 1ms", c.CommitInterval)
	case c.MaxPollRecords < 1:
		return fmt.Errorf("ingest: Config.MaxPollRecords: %d must be positive", c.MaxPollRecords)
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("ingest: Config.TransactionTimeout: %v is below 1s", c.TransactionTimeout)
	case c.CommitInterval*2 > c.TransactionTimeout:
		return fmt.Errorf("ingest: Config.CommitInterval: %v must be well below TransactionTimeout (%v)", c.CommitInterval, c.TransactionTimeout)
	case c.RestoreTimeout <= 0:
		return fmt.Errorf("ingest: Config.RestoreTimeout: %v must be positive", c.RestoreTimeout)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("ingest: Config.ShutdownTimeout: %v must be positive", c.ShutdownTimeout)
	}
	if err := c.Topics.validate(); err != nil {
		return err
	}
	if err := c.Decoder.Validate(); err != nil {
		return fmt.Errorf("ingest: Config.Decoder: %w", err)
	}
	return nil
}

// maxProduceAborts is how many transactions in a row may abort on produce
// errors before Run fails.
const maxProduceAborts = 20

// Pipeline is the scoring consumer: it reads touchpoints in a consumer
// group, scores them with one engine per assigned partition, and writes
// MQL events, dead letters, scored touchpoints, the state changelog and the
// input offsets in one Kafka transaction per commit interval.
type Pipeline struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	sess *kgo.GroupTransactSession

	// mu guards workers. The rebalance callbacks (run only while the poll
	// loop is blocked in PollRecords, thanks to BlockRebalanceOnPoll) add
	// and remove workers; the loop reads the map between polls.
	mu      sync.Mutex
	workers map[int32]*worker

	produceErr atomic.Pointer[error]
	// produceAborts counts transactions aborted in a row on produce
	// errors; at maxProduceAborts Run gives up (exit, alert, restart)
	// rather than retry a record that can never be written.
	produceAborts  int
	lastProduceErr error
	rebalanced     atomic.Bool
	maxRecord      int // largest record value+key+headers the producer can write
	ready          atomic.Bool
	leads          atomic.Int64
	restoreErr     atomic.Pointer[error]
}

// metadataMinAge bounds how long a produce retry waits. With Kafka 4's
// transactions (KIP-890) a produce right after a commit can get
// CONCURRENT_TRANSACTIONS while the coordinator still writes the previous
// transaction's markers; franz-go retries it after a metadata refresh,
// which its default minimum metadata age (5 s) delays by up to 5 s: we
// measured whole-pipeline stalls of 4.5-5 s in one run in three
// (bench/e2e, DESIGN.md). 250 ms keeps refreshes rare when a partition
// really is unavailable.
const metadataMinAge = 250 * time.Millisecond

// New validates cfg and builds a Pipeline; it does not connect yet.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "scorer"),
		workers: make(map[int32]*worker),
	}
	p.m = newMetrics(cfg.Registerer, p)
	return p, nil
}

// Model returns the scoring model in force.
func (p *Pipeline) Model() *models.Model { return p.cfg.Model }

// Ready reports whether the pipeline has joined its group and restored the
// state of its partitions, for /readyz.
func (p *Pipeline) Ready() bool { return p.ready.Load() }

// Run consumes until ctx is done, then ends the open transaction with a
// commit (bounded by ShutdownTimeout), leaves the group and returns nil. It
// returns an error when the transactional producer fails for good (fenced,
// or the cluster refuses it); the caller should exit and restart: the
// state and offsets of the last committed transaction are intact.
func (p *Pipeline) Run(ctx context.Context) error {
	batchLimit, err := producerBatchLimit(ctx, p.cfg.Kafka, p.cfg.Topics, p.log)
	if err != nil {
		return err
	}
	p.log.Info("producer batch limit", "bytes", batchLimit)
	// A record must fit a batch with room for the batch header.
	p.maxRecord = int(batchLimit) - 512
	// Defaults the operator's options may override, then ours.
	opts := append([]kgo.Opt{kgo.MetadataMinAge(metadataMinAge)}, p.cfg.Kafka...)
	opts = append(opts,
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.cfg.Topics.Touchpoints),
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(newPartitioner(p.cfg.Topics.State, p.cfg.Topics.Scored)),
		kgo.ProducerBatchMaxBytes(batchLimit),
		kgo.MaxBufferedRecords(1<<20),
		kgo.OnPartitionsAssigned(p.assigned),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.revoked),
	)
	if p.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(p.cfg.SessionTimeout))
	}
	if p.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(p.cfg.InstanceID))
	}
	for _, h := range p.cfg.Hooks {
		opts = append(opts, kgo.WithHooks(h))
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("ingest: client: %w", err)
	}
	p.sess = sess
	defer func() {
		p.stopAll()
		sess.CloseAllowingRebalance()
		p.ready.Store(false)
	}()
	p.log.Info("scorer starting", "group", p.cfg.Group, "input", p.cfg.Topics.Touchpoints,
		"transactional_id", p.cfg.TransactionalID, "model", p.cfg.Model.Name, "model_version", p.cfg.Model.Version)

	for {
		stopped, began, ferr := p.fill(ctx)
		if began {
			// A failed fill (a restore failed) aborts: the last poll's
			// records were not all processed, and committing would commit
			// their offsets.
			if err := p.end(ctx, ferr != nil); err != nil {
				return err
			}
		}
		if n := p.produceAborts; n >= maxProduceAborts {
			return fmt.Errorf("ingest: %d transactions in a row aborted on produce errors, last: %w", n, p.lastProduceErr)
		}
		if ferr != nil {
			return ferr
		}
		if stopped {
			p.log.Info("scorer stopped")
			return nil
		}
	}
}

// fill polls and processes records for one transaction: it begins the
// transaction when the first records arrive (an idle pipeline opens no
// transactions) and returns once the commit interval has passed since, or
// when ctx is done (stopped).
func (p *Pipeline) fill(ctx context.Context) (stopped, began bool, err error) {
	var deadline time.Time
	for {
		if began && !time.Now().Before(deadline) {
			return false, true, nil
		}
		if ctx.Err() != nil {
			return true, began, nil
		}
		var pollCtx context.Context
		var cancel context.CancelFunc
		if began {
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		} else {
			// Idle: come back now and then to notice a failed restore.
			pollCtx, cancel = context.WithTimeout(ctx, time.Second)
		}
		if !began {
			// Rebalances happen between transactions only: a restore in
			// the assignment callback can then never outlast our own
			// transaction's timeout, and revocations never abort work.
			p.sess.AllowRebalance()
		}
		p.rebalanced.Store(false)
		fetches := p.sess.PollRecords(pollCtx, p.cfg.MaxPollRecords)
		cancel()
		if !began && p.rebalanced.Load() {
			// The session marks a revocation and, until its next End,
			// neither aborts less nor tells us of the next one. Ending the
			// (empty) transaction resets it and rewinds the consumer to
			// the committed offsets: what this poll returned is fetched
			// again.
			if _, err := p.sess.End(context.WithoutCancel(ctx), kgo.TryAbort); err != nil {
				return true, false, fmt.Errorf("ingest: reset after rebalance: %w", err)
			}
			continue
		}
		if err := p.restoreFailed(); err != nil {
			// A partition could not be restored; its worker is missing and
			// its records must not be processed. Leaving the group lets
			// another instance (or our restart) try again.
			return true, began, err
		}
		if !began && fetches.NumRecords() > 0 {
			if err := p.sess.Begin(); err != nil {
				return true, false, fmt.Errorf("ingest: begin transaction: %w", err)
			}
			began, deadline = true, time.Now().Add(p.cfg.CommitInterval)
		}
		p.process(fetches)
		if fetches.IsClientClosed() {
			return true, began, nil
		}
	}
}

// process hands each partition's records to its worker and waits for all.
func (p *Pipeline) process(fetches kgo.Fetches) {
	var wg sync.WaitGroup
	now := p.cfg.Clock()
	p.mu.Lock()
	fetches.EachError(func(t string, part int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		p.log.Warn("fetch error", "topic", t, "partition", part, "err", err)
		p.m.fetchErrors.Inc()
	})
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		w := p.workers[fp.Partition]
		if w == nil {
			// Cannot happen: fetching starts only after OnPartitionsAssigned
			// returned, and revoked partitions are never returned again.
			// Dropping records silently would lose them, so make the
			// transaction fail instead.
			err := fmt.Errorf("ingest: records for partition %d without a worker", fp.Partition)
			p.produceErr.CompareAndSwap(nil, &err)
			return
		}
		last := fp.Records[len(fp.Records)-1].Offset
		p.m.lag.WithLabelValues(partLabel(fp.Partition)).Set(float64(max(fp.HighWatermark-last-1, 0)))
		wg.Add(1)
		w.work <- batch{records: fp.Records, now: now, done: &wg}
	})
	p.mu.Unlock()
	wg.Wait()
}

// end writes the changelog for this transaction's dirty leads and ends the
// transaction; the engines commit or roll back with it.
func (p *Pipeline) end(ctx context.Context, abort bool) error {
	// Never cancelled with ctx: a stop during end must still end the
	// transaction, or readers and the next owner wait for its timeout.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	dirty := 0
	for part, w := range p.workers {
		dirty += w.eng.Dirty()
		w.eng.AppendDirty(func(lead string, state []byte) {
			r := &kgo.Record{
				Topic:     p.cfg.Topics.State,
				Partition: part,
				Key:       []byte(lead),
				Value:     slices.Clone(state),
			}
			p.sess.Produce(endCtx, r, p.promise)
		})
	}
	// Flush first, so that every record of the transaction has its outcome
	// before we choose: End would commit a transaction in which some
	// records failed for good (a batch over the topic's size limit, for
	// one), and those records would be lost.
	if err := p.sess.Client().Flush(endCtx); err != nil {
		return fmt.Errorf("ingest: flush: %w", err)
	}
	try := kgo.TryCommit
	if abort {
		try = kgo.TryAbort
	}
	if perr := p.produceErr.Load(); perr != nil {
		p.log.Warn("aborting transaction after a produce error", "err", *perr)
		try = kgo.TryAbort
		p.produceAborts++
		p.lastProduceErr = *perr
	} else {
		p.produceAborts = 0
	}
	start := time.Now()
	committed, err := p.sess.End(endCtx, try)
	p.produceErr.Store(nil)
	p.m.commitSeconds.Observe(time.Since(start).Seconds())
	if committed {
		p.m.transactions.WithLabelValues("committed").Inc()
		p.m.changelog.Add(float64(dirty))
	} else {
		p.m.transactions.WithLabelValues("aborted").Inc()
	}
	for part, w := range p.workers {
		if committed {
			w.eng.Commit()
			w.flushMetrics(p.m)
		} else {
			w.eng.Rollback()
			w.dropMetrics()
		}
		if invariants.Enabled && w.eng.Dirty() != 0 {
			panic(fmt.Sprintf("ingest: partition %d: %d leads still dirty after the transaction ended", part, w.eng.Dirty()))
		}
	}
	p.countLeads()
	if err != nil {
		return fmt.Errorf("ingest: end transaction: %w", err)
	}
	return nil
}

func (p *Pipeline) promise(_ *kgo.Record, err error) {
	if err != nil {
		p.produceErr.CompareAndSwap(nil, &err)
	}
}

// assigned restores the state of newly assigned partitions from the
// changelog and starts their workers. Fetching for them starts only after
// it returns.
func (p *Pipeline) assigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	p.rebalanced.Store(true)
	parts := assigned[p.cfg.Topics.Touchpoints]
	if len(parts) == 0 {
		p.ready.Store(true)
		return
	}
	p.ready.Store(false)
	start := time.Now()
	engines, stats, err := restore(ctx, p.cfg, p.log, p.m, parts)
	if err != nil {
		err = fmt.Errorf("ingest: restore partitions %v: %w", parts, err)
		p.restoreErr.Store(&err)
		return
	}
	p.mu.Lock()
	for _, part := range parts {
		w, err := newWorker(p, part, engines[part])
		if err != nil {
			p.mu.Unlock()
			p.restoreErr.Store(&err)
			return
		}
		p.workers[part] = w
	}
	p.countLeads()
	p.mu.Unlock()
	p.log.Info("partitions assigned", "partitions", parts, "leads_restored", stats.leads,
		"changelog_records", stats.records, "took", time.Since(start).Round(time.Millisecond))
	p.ready.Store(true)
}

// revoked stops the workers of revoked or lost partitions. Their uncommitted
// work is discarded: the transaction session aborts the open transaction,
// and the next owner restores from the changelog.
func (p *Pipeline) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.rebalanced.Store(true)
	parts := revoked[p.cfg.Topics.Touchpoints]
	p.mu.Lock()
	for _, part := range parts {
		if w := p.workers[part]; w != nil {
			w.stop()
			delete(p.workers, part)
			p.m.lag.DeleteLabelValues(partLabel(part))
		}
	}
	p.countLeads()
	p.mu.Unlock()
	if len(parts) > 0 {
		p.log.Info("partitions revoked", "partitions", parts)
	}
}

// countLeads sets the leads gauge to the leads the workers hold: at the
// end of each transaction, and when partitions come or go (a restart shows
// its restored leads before its first record). The caller holds p.mu, and
// no worker is running (end, or a rebalance while the loop is blocked in
// PollRecords).
func (p *Pipeline) countLeads() {
	var leads int64
	for _, w := range p.workers {
		leads += int64(w.eng.Len())
	}
	p.leads.Store(leads)
}

func (p *Pipeline) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for part, w := range p.workers {
		w.stop()
		delete(p.workers, part)
	}
}

func (p *Pipeline) restoreFailed() error {
	if e := p.restoreErr.Load(); e != nil {
		return *e
	}
	return nil
}
