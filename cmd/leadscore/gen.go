package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/bench/synth"
	"github.com/leadscore/leadscore/ingest"
)

// cmdGen produces synthetic touchpoints, or replays a JSONL file, to any
// Kafka cluster.
func cmdGen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	var k kafkaFlags
	k.register(fs, "127.0.0.1:9092")
	topic := fs.String("topic", ingest.DefaultTouchpointsTopic, "topic to produce to")
	file := fs.String("file", "", "replay this JSONL `file` instead of generating (one touchpoint, or {key, value, headers} envelope, per line)")
	rate := fs.Float64("rate", 0, "records per second (0: as fast as possible)")
	count := fs.Int64("count", 10000, "records to produce (0: until interrupted)")
	leads := fs.Int("leads", 10000, "distinct synthetic leads")
	seed := fs.Int64("seed", 1, "seed of the synthetic stream (the same seed gives the same records)")
	badFraction := fs.Float64("bad-fraction", 0.01, "share of deliberately bad records, 0 to 1")
	live := fs.Bool("live", true, "event times follow the wall clock (false: simulated time from --start)")
	start := fs.String("start", "", "RFC 3339 event time of the first record with --live=false (default: 30 days ago)")
	step := fs.Duration("step", time.Second, "event time between records with --live=false (unused with --live)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Every setting is checked, and the source built, before the first
	// request to the cluster: a mistake exits 2 having produced nothing.
	switch {
	case *topic == "":
		return usageError{errors.New("--topic: empty; leave it out for the default")}
	case *count < 0:
		return usageError{fmt.Errorf("--count: %d is negative (0: until interrupted)", *count)}
	case *step < 0:
		return usageError{fmt.Errorf("--step: %v is negative", *step)}
	case !*live && *step == 0:
		return usageError{errors.New("--step: 0s with --live=false; simulated time needs a positive step")}
	}
	if err := checkSynthFlags(*rate, *leads, *badFraction); err != nil {
		return err
	}
	var next synth.Source
	if *file != "" {
		fh, err := os.Open(*file)
		if err != nil {
			return usageError{fmt.Errorf("--file: %w", err)}
		}
		defer fh.Close()
		next = synth.ReplayJSONL(fh, *topic)
	} else {
		cfg := synth.GenConfig{Seed: *seed, Leads: *leads, BadFraction: fraction(*badFraction), Topic: *topic}
		if !*live {
			cfg.Step = *step
			cfg.Start = time.Now().Add(-30 * 24 * time.Hour)
			if *start != "" {
				t, err := time.Parse(time.RFC3339, *start)
				if err != nil {
					return usageError{fmt.Errorf("--start: %w", err)}
				}
				cfg.Start = t
			}
		}
		gen, err := synth.NewGenerator(cfg)
		if err != nil {
			return usageError{err}
		}
		next = gen.Source()
	}
	kopts, err := k.opts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(kopts, kgo.DefaultProduceTopic(*topic))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := checkCluster(ctx, cl, *topic, os.Stderr); err != nil {
		return fmt.Errorf("gen: %w (brokers %s)", err, k.brokers)
	}

	pc := synth.ProduceConfig{Rate: *rate, Count: *count}
	if !*quiet {
		pc.Progress = os.Stderr
	}
	st, err := synth.Produce(ctx, cl, next, pc)
	fmt.Fprintf(os.Stderr, "\nproduced %d records to %s in %v (%.0f/s), %d failed\n",
		st.Produced, *topic, st.Elapsed.Round(time.Millisecond), float64(st.Produced)/max(st.Elapsed.Seconds(), 1e-9), st.Failed)
	if err != nil {
		return err
	}
	if st.Failed > 0 {
		return fmt.Errorf("gen: %d records failed", st.Failed)
	}
	return nil
}

// checkSynthFlags checks the flags of the synthetic stream that gen and
// dev share, naming the flag, before anything is produced.
func checkSynthFlags(rate float64, leads int, badFraction float64) error {
	switch {
	case math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0:
		return usageError{fmt.Errorf("--rate: %v must be a finite number >= 0 (0: as fast as possible)", rate)}
	case leads < 1 || leads > math.MaxInt32:
		return usageError{fmt.Errorf("--leads: %d not in [1, %d]", leads, math.MaxInt32)}
	case !(badFraction >= 0 && badFraction <= 1): // NaN too
		return usageError{fmt.Errorf("--bad-fraction: %v not in [0, 1]", badFraction)}
	}
	return nil
}

// clusterCheckTimeout bounds gen's first request to the cluster.
const clusterCheckTimeout = 30 * time.Second

// checkCluster asks the cluster for topic's metadata before anything is
// produced. A producer whose cluster refuses it (wrong credentials, TLS
// on one side only, an untrusted certificate) keeps its records buffered
// and retries them without end, with nothing to show; the metadata request
// returns that error, and gen stops at once. A cluster that cannot be
// reached yet (connection refused or timed out: a broker still starting)
// is asked again until clusterCheckTimeout, with a note on notes the
// first time, then its last error is returned. A topic that does not
// exist is not an error here: clusters with auto.create.topics.enable
// create it on first use, and the others fail each record with
// UNKNOWN_TOPIC_OR_PARTITION.
func checkCluster(ctx context.Context, cl *kgo.Client, topic string, notes io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, clusterCheckTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	for tries := 0; ; tries++ {
		_, err := adm.ListTopics(ctx, topic)
		if err == nil {
			return nil
		}
		if !unreachable(err) || ctx.Err() != nil {
			return fmt.Errorf("cluster metadata: %w", err)
		}
		if tries == 0 {
			fmt.Fprintf(notes, "gen: cluster not reachable yet (%v); asking again for up to %v\n", err, clusterCheckTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster metadata: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// unreachable reports whether err says that no connection could be made
// (refused, timed out, no route): worth asking again, unlike a refused
// login or certificate.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &netErr) && netErr.Timeout()
}
