package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/leadscore/leadscore/ingest"
	"github.com/leadscore/leadscore/internal/hugepages"
	"github.com/leadscore/leadscore/sinks/archive"
)

// pipelineFlags are the settings of the scorer and the archiver, shared by
// run and dev.
type pipelineFlags struct {
	kafka kafkaFlags
	logs  logFlags

	group           string
	transactionalID string
	instanceID      string
	sessionTimeout  time.Duration
	topics          ingest.Topics
	model           string
	inputFormat     string
	maxValueBytes   int
	commitInterval  time.Duration
	txnTimeout      time.Duration
	shutdownTimeout time.Duration
	createTopics    bool
	partitions      int
	replication     int

	archiveDir          string
	archiveGroup        string
	archiveRollRecords  int
	archiveRollBytes    int64
	archiveRollInterval time.Duration
	archiveFlushIdle    time.Duration

	metricsAddr string
	hugePages   bool
	noScorer    bool // run --score=false: the archiver alone
}

func (f *pipelineFlags) register(fs *flag.FlagSet, defBrokers, defArchive, defMetrics string) {
	f.kafka.register(fs, defBrokers)
	f.logs.register(fs)
	fs.StringVar(&f.group, "group", "leadscore", "consumer group of the scorers")
	fs.StringVar(&f.transactionalID, "transactional-id", "", "transactional id of this instance; unique per live instance (default leadscore-<hostname>)")
	fs.StringVar(&f.instanceID, "instance-id", "", "static group membership `id`: a restart with the same id takes its partitions back at once (also the default transactional id)")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", 45*time.Second, "group session timeout: how long a crashed instance holds its partitions")
	fs.StringVar(&f.topics.Touchpoints, "topic-touchpoints", ingest.DefaultTouchpointsTopic, "input topic of touchpoints")
	fs.StringVar(&f.topics.MQL, "topic-mql", ingest.DefaultMQLTopic, "output topic of MQL events")
	fs.StringVar(&f.topics.DLQ, "topic-dlq", ingest.DefaultDLQTopic, "dead-letter topic")
	fs.StringVar(&f.topics.State, "topic-state", ingest.DefaultStateTopic, "compacted changelog of lead state (same partition count as the input)")
	fs.StringVar(&f.topics.Scored, "topic-scored", ingest.DefaultScoredTopic, "topic of scored touchpoints, read by the archiver")
	fs.StringVar(&f.model, "model", "", "scoring model YAML `file` (default: the embedded default model)")
	fs.StringVar(&f.inputFormat, "input-format", "auto", "touchpoint format: auto, json, segment or cloudevents")
	fs.IntVar(&f.maxValueBytes, "max-value-bytes", 1<<20, "largest touchpoint value accepted, in `bytes` (at most 256 MiB); larger ones are dead-lettered")
	fs.DurationVar(&f.commitInterval, "commit-interval", 100*time.Millisecond, "how long a transaction stays open")
	fs.DurationVar(&f.txnTimeout, "transaction-timeout", 10*time.Second, "broker-side transaction timeout")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "bound on the final commit when stopping; the whole stop is cut short 5s later")
	fs.BoolVar(&f.createTopics, "create-topics", true, "create missing topics (else a missing topic is an error)")
	fs.IntVar(&f.partitions, "partitions", 12, "partitions of a created input topic")
	fs.IntVar(&f.replication, "replication-factor", -1, "replication factor of created topics (-1: broker default)")
	fs.StringVar(&f.archiveDir, "archive-dir", defArchive, "Parquet archive `directory` (empty: no archiver in this process)")
	fs.StringVar(&f.archiveGroup, "archive-group", "leadscore-archiver", "consumer group of the archivers")
	fs.IntVar(&f.archiveRollRecords, "archive-roll-records", 100000, "records per partition after which archive files are closed")
	fs.Int64Var(&f.archiveRollBytes, "archive-roll-bytes", 64<<20, "input bytes per partition after which archive files are closed")
	fs.DurationVar(&f.archiveRollInterval, "archive-roll-interval", 10*time.Minute, "record time spanned by one archive file at most")
	fs.DurationVar(&f.archiveFlushIdle, "archive-flush-idle", 30*time.Second, "wall-clock time without records after which open archive files are closed")
	fs.StringVar(&f.metricsAddr, "metrics-addr", defMetrics, "`address` of the /metrics, /healthz and /readyz endpoint (empty: off)")
	fs.BoolVar(&f.hugePages, "huge-pages", false, "advise transparent huge pages for the heap where the kernel's THP mode is madvise (Linux): fewer TLB misses; costs up to 2 MiB of memory per partly used huge page and risks page-fault stalls while the kernel compacts memory")
}

// validate checks what needs no broker, naming the flag, so that a
// mistake exits 2 before anything connects or starts: the components'
// own Validate runs only after the topics are checked. A zero is refused
// where the components would take it as "the default": the flag's
// default (shown by -h) is had by leaving the flag out.
func (f *pipelineFlags) validate() error {
	type setting struct{ name, v string }
	topics := []setting{
		{"topic-touchpoints", f.topics.Touchpoints}, {"topic-mql", f.topics.MQL}, {"topic-dlq", f.topics.DLQ},
		{"topic-state", f.topics.State}, {"topic-scored", f.topics.Scored},
	}
	for _, s := range append([]setting{{"group", f.group}, {"archive-group", f.archiveGroup}}, topics...) {
		if s.v == "" {
			return usageError{fmt.Errorf("--%s: empty; leave it out for the default", s.name)}
		}
	}
	for i, a := range topics {
		for _, b := range topics[i+1:] {
			if a.v == b.v {
				return usageError{fmt.Errorf("--%s and --%s: both are %q; each topic has one role", a.name, b.name, a.v)}
			}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"session-timeout", f.sessionTimeout}, {"commit-interval", f.commitInterval},
		{"transaction-timeout", f.txnTimeout}, {"shutdown-timeout", f.shutdownTimeout},
		{"archive-roll-interval", f.archiveRollInterval}, {"archive-flush-idle", f.archiveFlushIdle},
	} {
		if d.v <= 0 {
			return usageError{fmt.Errorf("--%s: %v must be positive", d.name, d.v)}
		}
	}
	switch {
	case f.commitInterval < time.Millisecond:
		return usageError{fmt.Errorf("--commit-interval: %v is below 1ms", f.commitInterval)}
	case f.txnTimeout < time.Second:
		return usageError{fmt.Errorf("--transaction-timeout: %v is below 1s", f.txnTimeout)}
	case f.commitInterval*2 > f.txnTimeout:
		return usageError{fmt.Errorf("--commit-interval: %v must be at most half of --transaction-timeout (%v)", f.commitInterval, f.txnTimeout)}
	case f.maxValueBytes < 1 || f.maxValueBytes > ingest.MaxValueBytesLimit:
		return usageError{fmt.Errorf("--max-value-bytes: %d not in [1, %d]", f.maxValueBytes, ingest.MaxValueBytesLimit)}
	case f.partitions < 1 || f.partitions > math.MaxInt32:
		return usageError{fmt.Errorf("--partitions: %d not in [1, %d]", f.partitions, math.MaxInt32)}
	case f.replication != -1 && (f.replication < 1 || f.replication > math.MaxInt16):
		return usageError{fmt.Errorf("--replication-factor: %d is neither -1 (the broker's default) nor in [1, %d]", f.replication, math.MaxInt16)}
	case f.archiveRollRecords < 1:
		return usageError{fmt.Errorf("--archive-roll-records: %d must be positive", f.archiveRollRecords)}
	case f.archiveRollBytes < 1:
		return usageError{fmt.Errorf("--archive-roll-bytes: %d must be positive", f.archiveRollBytes)}
	}
	if f.metricsAddr != "" {
		// Syntax only: binding here would hold the port, or race another
		// process for it, before the rest is built.
		_, port, err := net.SplitHostPort(f.metricsAddr)
		if err != nil {
			return usageError{fmt.Errorf("--metrics-addr: %q is not host:port (e.g. :9464 or 127.0.0.1:9464): %w", f.metricsAddr, err)}
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return usageError{fmt.Errorf("--metrics-addr: %q: port %q is not a number from 0 to 65535", f.metricsAddr, port)}
		}
	}
	return nil
}

// txnID is the transactional id: the flag, else derived from the
// instance id, else the pipeline's default (leadscore-<hostname>).
func (f *pipelineFlags) txnID() string {
	if f.transactionalID == "" && f.instanceID != "" {
		return "leadscore-" + f.instanceID
	}
	return f.transactionalID
}

func (f *pipelineFlags) archiveInstanceID() string {
	if f.instanceID == "" {
		return ""
	}
	return f.instanceID + "-archiver"
}

// components are the running parts of a process: each one an actor of the
// errgroup.
type components struct {
	log       *slog.Logger
	reg       *prometheus.Registry
	kopts     []kgo.Opt
	pipeline  *ingest.Pipeline
	archiver  *archive.Archiver
	http      *http.Server
	httpLn    net.Listener
	hugePages bool // run hugepages.Keep
}

// hugePagesInterval is how often the process's new memory gets huge page
// advice: the heap grows most while partitions' state is restored, and
// its memory is advised and collapsed at the next round.
const hugePagesInterval = 30 * time.Second

// build validates the settings and builds the scorer, the archiver and the
// metrics endpoint (prepare), then creates missing topics when allowed
// (connect).
func (f *pipelineFlags) build(ctx context.Context, reg *prometheus.Registry, log *slog.Logger) (*components, error) {
	c, err := f.prepare(reg, log)
	if err != nil {
		return nil, err
	}
	if err := f.connect(ctx, c); err != nil {
		c.discard()
		return nil, err
	}
	return c, nil
}

// prepare validates the settings and builds the scorer, the archiver and
// the metrics listener without contacting the cluster or writing a file:
// every mistake in them (a bad model, a metrics address in use) is
// refused before run connects and before dev creates its data directory.
// A caller that gives up on the result before running it calls discard.
func (f *pipelineFlags) prepare(reg *prometheus.Registry, log *slog.Logger) (*components, error) {
	kopts, err := f.kafka.opts()
	if err != nil {
		return nil, err
	}
	if f.noScorer && f.archiveDir == "" {
		return nil, usageError{errors.New("--score=false runs the archiver alone: it needs --archive-dir")}
	}
	c := &components{log: log, reg: reg, kopts: kopts, hugePages: f.hugePages}
	if !f.noScorer {
		if err := f.buildScorer(c); err != nil {
			return nil, err
		}
	}
	if f.archiveDir != "" {
		c.archiver, err = archive.New(archive.Config{
			Kafka:          append(slices.Clone(kopts), kgo.WithHooks(clientMetrics(reg, "archiver"))),
			Group:          f.archiveGroup,
			SessionTimeout: f.sessionTimeout,
			InstanceID:     f.archiveInstanceID(),
			ScoredTopic:    f.topics.Scored,
			MQLTopic:       f.topics.MQL,
			DLQTopic:       f.topics.DLQ,
			Dir:            f.archiveDir,
			RollRecords:    f.archiveRollRecords,
			RollBytes:      f.archiveRollBytes,
			RollInterval:   f.archiveRollInterval,
			FlushIdle:      f.archiveFlushIdle,
			Logger:         log,
			Registerer:     reg,
		})
		if err != nil {
			return nil, usageError{err}
		}
	}
	if f.metricsAddr != "" {
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		c.httpLn = ln
		c.http = &http.Server{Handler: c.handler(), ReadHeaderTimeout: 5 * time.Second}
	}
	return c, nil
}

// connect makes sure the topics exist: the scorer creates the missing
// ones when allowed; an archiver alone waits for them.
func (f *pipelineFlags) connect(ctx context.Context, c *components) error {
	if f.noScorer {
		return f.waitArchivedTopics(ctx, c.kopts, c.log)
	}
	return f.ensureTopics(ctx, c.kopts)
}

// discard closes what prepare opened, for components that will not run.
func (c *components) discard() {
	if c.httpLn != nil {
		_ = c.httpLn.Close()
	}
}

// buildScorer loads the model and builds the scorer into c.
func (f *pipelineFlags) buildScorer(c *components) error {
	model, err := loadModel(f.model)
	if err != nil {
		return err
	}
	format, err := ingest.ParseFormat(f.inputFormat)
	if err != nil {
		return usageError{fmt.Errorf("--input-format: %w", err)}
	}
	c.pipeline, err = ingest.New(ingest.Config{
		Kafka:              c.kopts,
		Hooks:              []kgo.Hook{clientMetrics(c.reg, "scorer")},
		Group:              f.group,
		TransactionalID:    f.txnID(),
		InstanceID:         f.instanceID,
		SessionTimeout:     f.sessionTimeout,
		Topics:             f.topics,
		Model:              model,
		Decoder:            ingest.DecoderConfig{Format: format, MaxValueBytes: f.maxValueBytes},
		CommitInterval:     f.commitInterval,
		TransactionTimeout: f.txnTimeout,
		ShutdownTimeout:    f.shutdownTimeout,
		Logger:             c.log,
		Registerer:         c.reg,
	})
	if err != nil {
		return usageError{err}
	}
	return nil
}

// topicPoll and topicNote are how often an archiver alone asks whether the
// topics it reads exist yet, and how often it says it is still waiting.
const (
	topicPoll = time.Second
	topicNote = 30 * time.Second
)

// waitArchivedTopics waits, for an archiver alone (run --score=false),
// until the topics it reads exist. It creates none: the scorers create
// them, the scored topic with the input's partition count, so an archiver
// started first waits for them, saying so every topicNote. A cluster that
// cannot be reached or refuses the client fails as the scorer's topic
// check does; a stop while waiting returns the context's error.
func (f *pipelineFlags) waitArchivedTopics(ctx context.Context, kopts []kgo.Opt, log *slog.Logger) error {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := []string{f.topics.Scored, f.topics.MQL, f.topics.DLQ}
	var noted time.Time
	for {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		details, err := adm.ListTopics(lctx, topics...)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("archiver: list topics: %w (brokers %s)", err, f.kafka.brokers)
		}
		var missing []string
		for _, t := range topics {
			switch d, ok := details[t]; {
			case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
				missing = append(missing, t)
			case d.Err != nil: // not allowed to see it, for one
				return fmt.Errorf("archiver: topic %s: %w (brokers %s)", t, d.Err, f.kafka.brokers)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Since(noted) >= topicNote {
			log.Warn("archiver: waiting for topics to exist (the scorers create them; this process creates none)", "missing", missing)
			noted = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(topicPoll):
		}
	}
}

func (f *pipelineFlags) ensureTopics(ctx context.Context, kopts []kgo.Opt) error {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, kadm.NewClient(cl), f.topics, ingest.TopicPlan{
		Partitions:        int32(f.partitions),
		ReplicationFactor: int16(f.replication),
		Create:            f.createTopics,
	}); err != nil {
		return fmt.Errorf("%w (brokers %s)", err, f.kafka.brokers)
	}
	return nil
}

func (c *components) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{Registry: c.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// An archiver alone is ready once built: it keeps no state to restore.
		if c.pipeline != nil && !c.pipeline.Ready() {
			http.Error(w, "not ready: joining the group or restoring state", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// run runs every component until ctx is done or one of them fails.
func (c *components) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if c.hugePages {
		g.Go(func() error {
			hugepages.Keep(ctx, hugePagesInterval, c.log)
			return nil
		})
	}
	if c.pipeline != nil {
		g.Go(func() error { return c.pipeline.Run(ctx) })
	}
	if c.archiver != nil {
		g.Go(func() error { return c.archiver.Run(ctx) })
	}
	if c.http != nil {
		g.Go(func() error {
			err := c.http.Serve(c.httpLn)
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("metrics endpoint: %w", err)
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return c.http.Shutdown(sctx)
		})
	}
	return g.Wait()
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Where the system says (Linux), whatever --huge-pages: with THP
	// "always" the kernel backs memory with huge pages unasked.
	if _, err := hugepages.AnonHugeBytes(); err == nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "leadscore_process_huge_page_bytes",
			Help: "Anonymous memory of the process backed by transparent huge pages (AnonHugePages of /proc/self/smaps_rollup).",
		}, func() float64 {
			n, _ := hugepages.AnonHugeBytes()
			return float64(n)
		}))
	}
	return reg
}

func cmdRun(ctx context.Context, st *stopper, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f pipelineFlags
	f.register(fs, "", "", ":9464")
	score := fs.Bool("score", true, "run the scorer in this process; false: the archiver alone (with --archive-dir), as a separate deployment")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	f.noScorer = !*score
	st.bound(f.shutdownTimeout)
	log, err := f.logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	st.setLogger(log)
	c, err := f.build(ctx, newRegistry(), log)
	if err != nil {
		if st.stopping() && errors.Is(err, context.Canceled) {
			return nil // stopped while an archiver alone waited for its topics
		}
		return err
	}
	log.Info("leadscore running", "brokers", f.kafka.brokers, "scorer", !f.noScorer, "metrics", f.metricsAddr, "archive", f.archiveDir)
	return c.run(ctx)
}
