package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/leadscore/leadscore/bench/synth"
)

// cmdDev runs the embedded default: an in-process Kafka-protocol broker
// with a persistent data directory, synthetic traffic, the scorer, the
// archiver and the metrics endpoint.
func cmdDev(ctx context.Context, st *stopper, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var f pipelineFlags
	f.register(fs, "", "./data/archive", "127.0.0.1:9464")
	listen := fs.String("listen", "127.0.0.1:9092", "`address` of the embedded broker (any Kafka client can use it)")
	dataDir := fs.String("data-dir", "./data/kafka", "`directory` where the embedded broker keeps its topics across restarts")
	generate := fs.Bool("generate", true, "produce synthetic touchpoints")
	rate := fs.Float64("rate", 200, "synthetic touchpoints per second (0: as fast as possible)")
	leads := fs.Int("leads", 5000, "distinct synthetic leads")
	badFraction := fs.Float64("bad-fraction", 0.01, "share of deliberately bad synthetic records (dead-lettered), 0 to 1")
	summary := fs.Duration("summary-every", 2*time.Second, "how often to print the one-line summary (0: never)")
	// Smaller defaults suit a laptop: two cores do not need twelve
	// partitions, and archive files should appear within a minute.
	setDefault(fs, "partitions", "6")
	setDefault(fs, "archive-roll-interval", "1m")
	setDefault(fs, "archive-flush-idle", "10s")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	if err := checkSynthFlags(*rate, *leads, *badFraction); err != nil {
		return err
	}
	if *summary < 0 {
		return usageError{fmt.Errorf("--summary-every: %v is negative (0: never)", *summary)}
	}
	if f.kafka.brokers != "" {
		return usageError{fmt.Errorf("dev: --brokers is set; dev runs its own broker at --listen (use 'leadscore run' for a cluster)")}
	}
	st.bound(f.shutdownTimeout)
	log, err := f.logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	st.setLogger(log)
	host, portStr, err := splitListen(*listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen: %w", err)}
	}
	if host != "127.0.0.1" && host != "localhost" {
		return usageError{fmt.Errorf("--listen: the embedded broker listens on loopback only, not %q", host)}
	}
	// A data directory that exists may be another dev's: its lock is
	// tried first, so that a second dev with the same ports is told the
	// directory is in use (exit 2), not that the port is. Deferred first,
	// the unlock runs last: after the broker has saved its state.
	var unlock func()
	if fi, err := os.Stat(*dataDir); err == nil && fi.IsDir() {
		if unlock, err = lockDataDir(*dataDir, log); err != nil {
			return err
		}
		defer unlock()
	}
	// Everything else that can refuse the start is checked before the
	// data directory is created, locked or written, so that a refused
	// start leaves nothing behind: the broker's port is bound here and
	// handed to the broker, prepare checks the model and the other
	// settings and binds the metrics address, and the generator is built.
	brokerLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", portStr))
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	defer func() {
		if brokerLn != nil { // not handed to the broker
			_ = brokerLn.Close()
		}
	}()
	addr := brokerLn.Addr().String()
	f.kafka.brokers = addr
	reg := newRegistry()
	c, err := f.prepare(reg, log)
	if err != nil {
		return err
	}
	started := false
	defer func() {
		if !started {
			c.discard()
		}
	}()
	var gen *synth.Generator
	produceCfg := synth.ProduceConfig{Rate: *rate}
	if *generate {
		gen, err = synth.NewGenerator(synth.GenConfig{
			Seed: time.Now().UnixNano(), Leads: *leads, BadFraction: fraction(*badFraction),
			Topic: f.topics.Touchpoints,
		})
		if err != nil {
			return usageError{err}
		}
		if err := produceCfg.Validate(); err != nil {
			return usageError{fmt.Errorf("--rate: %w", err)}
		}
	}

	if fi, err := os.Stat(*dataDir); err != nil || !fi.IsDir() {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		if unlock, err = lockDataDir(*dataDir, log); err != nil {
			return err
		}
		// Deferred before broker.Close, so it runs after it: the lock is
		// dropped once the broker has saved its state, never while it
		// writes.
		defer unlock()
	}
	broker, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			if brokerLn == nil {
				return nil, errors.New("embedded broker: asked for a second listener")
			}
			ln := brokerLn
			brokerLn = nil // the broker closes it from now on
			return ln, nil
		}),
		kfake.DataDir(*dataDir),
		kfake.ClusterID("leadscore-dev"),
		kfake.DefaultNumPartitions(f.partitions),
	)
	if err != nil {
		return fmt.Errorf("embedded broker on %s: %w", addr, err)
	}
	defer broker.Close()
	// A forced exit (second signal) still saves the broker's state
	// (topics, producer ids, group offsets): Close is idempotent and
	// returns at once if the stop is already closing it.
	st.beforeForcedExit(broker.Close)
	if err := f.connect(ctx, c); err != nil {
		return err
	}
	started = true

	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	fmt.Printf(`leadscore dev: everything runs in this process; Ctrl-C stops it.
  broker     %s  (Kafka protocol; data in %s)
  input      %s  (produce touchpoints here, key = lead id)
  MQL events %s
  dead letters %s
  archive    %s  (Parquet, Hive partitions dt=YYYY-MM-DD)
  metrics    http://%s/metrics   health /healthz /readyz
  model      %s %s
  synthetic  %s
`, addr, abs(*dataDir), f.topics.Touchpoints, f.topics.MQL, f.topics.DLQ, abs(f.archiveDir), f.metricsAddr,
		c.pipeline.Model().Name, c.pipeline.Model().Version, genDesc(*generate, *rate, *leads))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.run(gctx) })
	if *generate {
		g.Go(func() error {
			kopts, _ := f.kafka.opts()
			cl, err := kgo.NewClient(append(kopts, kgo.ClientID("leadscore-dev-generator"))...)
			if err != nil {
				return err
			}
			defer cl.Close()
			_, err = synth.Produce(gctx, cl, gen.Source(), produceCfg)
			if gctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	if *summary > 0 {
		g.Go(func() error {
			printSummaries(gctx, os.Stdout, reg, *summary)
			return nil
		})
	}
	err = g.Wait()
	// The embedded broker saves its data when it closes (deferred): never
	// cut that short.
	st.disarm()
	return err
}

// fraction maps a flag's 0 ("none") to the generator's "off" (negative).
func fraction(f float64) float64 {
	if f == 0 {
		return -1
	}
	return f
}

func genDesc(on bool, rate float64, leads int) string {
	if !on {
		return "off (--generate=false): produce your own"
	}
	return fmt.Sprintf("%.0f touchpoints/s over %d leads, a few hot ones, about 1%% bad records", rate, leads)
}

func splitListen(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("%q is not host:port", s)
	}
	host, port = s[:i], s[i+1:]
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", fmt.Errorf("%q: bad port", s)
	}
	return host, port, nil
}

// printSummaries prints a live one-line summary read from the metrics.
func printSummaries(ctx context.Context, w io.Writer, g prometheus.Gatherer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastConsumed float64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return
		case now := <-t.C:
			s := gatherSums(g)
			rate := (s["leadscore_touchpoints_consumed_total"] - lastConsumed) / now.Sub(last).Seconds()
			lastConsumed, last = s["leadscore_touchpoints_consumed_total"], now
			fmt.Fprintf(w, "%s  consumed %.0f (%.0f/s)  scored %.0f  dup %.0f  dead-lettered %.0f  MQL %.0f  leads %.0f  lag %.0f  archive files %.0f rows %.0f\n",
				now.Format("15:04:05"),
				s["leadscore_touchpoints_consumed_total"], rate,
				s["leadscore_touchpoints_scored_total"],
				s["leadscore_touchpoints_duplicate_total"],
				s["leadscore_touchpoints_dead_lettered_total"],
				s["leadscore_mql_emitted_total"],
				s["leadscore_leads"],
				s["leadscore_consumer_lag_records"],
				s["leadscore_archive_files_written_total"],
				s["leadscore_archive_rows_written_total"])
		}
	}
}

// gatherSums sums every counter and gauge over its labels.
func gatherSums(g prometheus.Gatherer) map[string]float64 {
	out := make(map[string]float64)
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()] += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()] += m.GetGauge().GetValue()
			}
		}
	}
	return out
}
