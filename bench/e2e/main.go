// Command e2e measures the scorer end to end on a Kafka cluster: it
// produces a deterministic synthetic stream to a fresh input topic, then
// runs the transactional scoring pipeline (in this process, as `leadscore
// run` does) until every record is consumed and committed, and prints the
// throughput, the commit latency and the memory held.
//
//	go run ./bench/e2e -brokers 127.0.0.1:19092 -events 1000000 -leads 100000
//
// The produce phase and the scoring phase are timed separately: the
// figure that matters is touchpoints/s through the pipeline, with every
// output (MQL events, dead letters, scored touchpoints, changelog) written
// in Kafka transactions.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/bench/synth"
	"github.com/leadscore/leadscore/ingest"
	"github.com/leadscore/leadscore/models"
)

func main() {
	brokers := flag.String("brokers", envOr("KAFKA_BROKERS", "127.0.0.1:19092"), "Kafka bootstrap servers")
	events := flag.Int64("events", 1_000_000, "touchpoints to produce and score")
	leads := flag.Int("leads", 100_000, "distinct leads")
	partitions := flag.Int("partitions", 6, "input partitions")
	commit := flag.Duration("commit-interval", 100*time.Millisecond, "transaction length")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the scoring phase to `file`")
	flag.Parse()
	profile = *cpuProfile
	if err := run(*brokers, *events, *leads, int32(*partitions), *commit); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

var profile string

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(brokers string, events int64, leads int, partitions int32, commit time.Duration) error {
	ctx := context.Background()
	kopts := []kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}
	prefix := fmt.Sprintf("bench-e2e-%d", time.Now().UnixNano())
	topics := ingest.Topics{
		Touchpoints: prefix, MQL: prefix + ".mql", DLQ: prefix + ".dlq",
		State: prefix + ".state", Scored: prefix + ".scored",
	}
	cl, err := kgo.NewClient(append(kopts, kgo.DefaultProduceTopic(prefix), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := ingest.EnsureTopics(ctx, adm, topics, ingest.TopicPlan{Partitions: partitions, Create: true}); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topics.Touchpoints, topics.MQL, topics.DLQ, topics.State, topics.Scored)
	}()

	step := time.Second
	gen, err := synth.NewGenerator(synth.GenConfig{
		Seed: 42, Leads: leads, Topic: prefix, Step: step,
		Start: time.Now().Add(-time.Duration(events+10) * step),
	})
	if err != nil {
		return err
	}
	t0 := time.Now()
	st, err := synth.Produce(ctx, cl, gen.Source(), synth.ProduceConfig{Count: events})
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	produceTime := time.Since(t0)
	fmt.Printf("produced %d touchpoints (%.1f MB) in %v: %.0f/s\n", st.Produced, float64(st.Bytes)/1e6,
		produceTime.Round(time.Millisecond), float64(st.Produced)/produceTime.Seconds())

	reg := prometheus.NewRegistry()
	p, err := ingest.New(ingest.Config{
		Kafka: kopts, Group: prefix, TransactionalID: prefix, Topics: topics,
		Model: models.Default(), CommitInterval: commit,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t1 := time.Now()
	go func() { done <- p.Run(rctx) }()
	consumed := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "leadscore_touchpoints_consumed_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	var tFirst time.Time
	for consumed() < float64(st.Produced) {
		if tFirst.IsZero() && consumed() > 0 {
			tFirst = time.Now()
		}
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("pipeline stopped early: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	scoreTime := time.Since(t1)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	cancel()
	if err := <-done; err != nil {
		return err
	}
	get := func(name string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				var s float64
				for _, m := range mf.GetMetric() {
					s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
				return s
			}
		}
		return 0
	}
	fmt.Printf("scored   %d touchpoints in %v including group join and restore: %.0f touchpoints/s end to end (commit interval %v, %d partitions)\n",
		st.Produced, scoreTime.Round(time.Millisecond), float64(st.Produced)/scoreTime.Seconds(), commit, partitions)
	if !tFirst.IsZero() {
		steady := scoreTime - tFirst.Sub(t1)
		fmt.Printf("         from the first commit on: %v, %.0f touchpoints/s\n", steady.Round(time.Millisecond), float64(st.Produced)/steady.Seconds())
	}
	fmt.Printf("         scored %.0f, duplicates %.0f, dead letters %.0f, MQL %.0f, leads %.0f, transactions %.0f\n",
		get("leadscore_touchpoints_scored_total"), get("leadscore_touchpoints_duplicate_total"),
		get("leadscore_touchpoints_dead_lettered_total"), get("leadscore_mql_emitted_total"),
		get("leadscore_leads"), get("leadscore_transactions_total"))
	fmt.Printf("         heap in use after GC: %.1f MB (%.0f bytes per lead held)\n",
		float64(ms.HeapInuse)/1e6, float64(ms.HeapInuse)/max(get("leadscore_leads"), 1))
	return nil
}
