package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicPlan says how EnsureTopics creates missing topics.
type TopicPlan struct {
	// Partitions for a missing input topic. Default 12. An existing input
	// topic keeps its count; the state and scored topics always get the
	// input's count.
	Partitions int32
	// ReplicationFactor for created topics; -1 (the default, from 0) lets
	// the broker choose.
	ReplicationFactor int16
	// Create missing topics; when false a missing topic is an error.
	Create bool
}

// EnsureTopics checks the pipeline's topics and, when plan.Create is set,
// creates the missing ones: the state changelog compacted, the dead-letter
// topic able to take any input value plus headers. It fails with a clear
// error when a topic is missing and may not be created, or when the state
// or scored topic has fewer partitions than the input (their partitions
// are the input's).
func EnsureTopics(ctx context.Context, adm *kadm.Client, t Topics, plan TopicPlan) error {
	t.setDefaults()
	if plan.Partitions <= 0 {
		plan.Partitions = 12
	}
	if plan.ReplicationFactor == 0 {
		plan.ReplicationFactor = -1
	}
	details, err := adm.ListTopics(ctx, t.Touchpoints, t.MQL, t.DLQ, t.State, t.Scored)
	if err != nil {
		return fmt.Errorf("ingest: list topics: %w", err)
	}
	count := func(topic string) (int32, bool) {
		d, ok := details[topic]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return 0, false
		}
		return int32(len(d.Partitions)), true
	}
	create := func(topic string, parts int32, configs map[string]*string) error {
		if !plan.Create {
			return fmt.Errorf("ingest: topic %q does not exist (create it with %d partitions, or allow creation)", topic, parts)
		}
		resp, err := adm.CreateTopic(ctx, parts, plan.ReplicationFactor, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("ingest: create topic %q: %w", topic, err)
		}
		return nil
	}
	str := func(s string) *string { return &s }
	in, ok := count(t.Touchpoints)
	if !ok {
		in = plan.Partitions
		// The input takes values up to maxRecordBytes, so that one over
		// the decoder's limit reaches the scorer and is dead-lettered as
		// oversized instead of being refused to the producer.
		if err := create(t.Touchpoints, in, map[string]*string{
			"max.message.bytes": str(strconv.Itoa(maxRecordBytes)),
		}); err != nil {
			return err
		}
	}
	// Every output topic takes batches up to maxRecordBytes: dead letters
	// carry input values whole, and the producer's batches are bounded by
	// the smallest limit of the topics it writes (producerBatchLimit).
	big := str(strconv.Itoa(maxRecordBytes))
	coPartitioned := map[string]map[string]*string{
		t.State: {
			"cleanup.policy":        str("compact"),
			"min.compaction.lag.ms": str("0"),
			"segment.bytes":         str(strconv.Itoa(64 << 20)),
			"max.message.bytes":     big,
		},
		t.Scored: {"max.message.bytes": big},
	}
	for _, topic := range []string{t.State, t.Scored} {
		n, ok := count(topic)
		if !ok {
			if err := create(topic, in, coPartitioned[topic]); err != nil {
				return err
			}
			continue
		}
		if n < in {
			return fmt.Errorf("ingest: topic %q has %d partitions but the input %q has %d: they must have the same number", topic, n, t.Touchpoints, in)
		}
	}
	others := map[string]map[string]*string{
		t.MQL: {"max.message.bytes": big},
		t.DLQ: {"max.message.bytes": big},
	}
	for _, topic := range []string{t.MQL, t.DLQ} {
		if _, ok := count(topic); !ok {
			if err := create(topic, in, others[topic]); err != nil {
				return err
			}
		}
	}
	return nil
}

// producerBatchLimit is the largest record batch every output topic takes:
// the smallest max.message.bytes among them, at most maxRecordBytes. A
// batch over a topic's limit fails for good, so the producer must never
// build one. When the configs may not be read (no DescribeConfigs
// permission, or a broker too old to answer), Kafka's default limit is
// assumed and logged. Topics created a moment ago may not be known yet to
// the broker that answers: other errors are retried for up to 30 seconds,
// so that a fresh topic's own limit is the one used.
func producerBatchLimit(ctx context.Context, opts []kgo.Opt, t Topics, log *slog.Logger) (int32, error) {
	const kafkaDefault = 1048588
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, fmt.Errorf("ingest: client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(30 * time.Second)
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		limit, err := describeBatchLimit(ctx, adm, t)
		if err == nil {
			return limit, nil
		}
		if ctx.Err() != nil {
			// Stopping: Run ends without producing, whatever the limit.
			return kafkaDefault, nil
		}
		if refusedForGood(err) || time.Now().Add(backoff).After(deadline) {
			log.Warn("cannot read the output topics' max.message.bytes; assuming Kafka's default: dead letters over it are truncated",
				"bytes", kafkaDefault, "err", err)
			return kafkaDefault, nil
		}
		select {
		case <-ctx.Done():
			return kafkaDefault, nil
		case <-time.After(backoff):
		}
	}
}

// refusedForGood reports whether a DescribeConfigs failure will not go away
// by asking again: the principal may not describe the topics, or the
// broker does not know the request.
func refusedForGood(err error) bool {
	for _, e := range []error{kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.UnsupportedVersion, kerr.InvalidRequest} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// describeBatchLimit reads the output topics' max.message.bytes once.
func describeBatchLimit(ctx context.Context, adm *kadm.Client, t Topics) (int32, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(rctx, t.MQL, t.DLQ, t.State, t.Scored)
	if err != nil {
		return 0, err
	}
	limit := int32(maxRecordBytes)
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, fmt.Errorf("topic %q: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			n, err := strconv.ParseInt(*c.Value, 10, 32)
			if err == nil && n > 0 {
				limit = min(limit, int32(n))
			}
		}
	}
	return limit, nil
}

// partitioner sends records of the co-partitioned topics (state, scored)
// to the partition set on the record, the input partition they come from,
// and hashes the key for the others.
type partitioner struct {
	manual     map[string]bool
	manualPart kgo.Partitioner
	keyedPart  kgo.Partitioner
}

func newPartitioner(coPartitioned ...string) kgo.Partitioner {
	p := partitioner{
		manual:     make(map[string]bool),
		manualPart: kgo.ManualPartitioner(),
		keyedPart:  kgo.StickyKeyPartitioner(nil),
	}
	for _, t := range coPartitioned {
		p.manual[t] = true
	}
	return p
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return p.manualPart.ForTopic(topic)
	}
	return p.keyedPart.ForTopic(topic)
}
