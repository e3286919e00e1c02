package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/bench/synth"
)

// offsets maps a partition to an offset.
type offsets map[int32]int64

func (o offsets) sum() int64 {
	var n int64
	for _, v := range o {
		n += v
	}
	return n
}

// createTopic creates topic with n partitions (broker-default replication).
func createTopic(ctx context.Context, adm *kadm.Client, topic string, n int) error {
	resp, err := adm.CreateTopic(ctx, int32(n), -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("chaos: create topic %s: %w", topic, err)
	}
	return nil
}

// partitioned wraps src so that each record gets its partition from its
// key (FNV-1a), or round robin when it has none: the same source gives the
// same partitions in every copy. The client must use
// kgo.ManualPartitioner.
func partitioned(src synth.Source, topic string, n int) synth.Source {
	var unkeyed int
	return func() (*kgo.Record, error) {
		r, err := src()
		if err != nil {
			return nil, err
		}
		r.Topic = topic
		if len(r.Key) == 0 {
			r.Partition = int32(unkeyed % n)
			unkeyed++
			return r, nil
		}
		h := fnv.New32a()
		h.Write(r.Key)
		r.Partition = int32(h.Sum32() % uint32(n))
		return r, nil
	}
}

// produceInput produces cfg.Events records of gen's stream to topic at
// rate records per second (0: as fast as possible) with one idempotent
// producer, so that per-partition order is the stream's.
func produceInput(ctx context.Context, brokers []string, gen synth.GenConfig, topic string, events, partitions int, rate float64) (synth.Stats, error) {
	g, err := synth.NewGenerator(gen)
	if err != nil {
		return synth.Stats{}, fmt.Errorf("chaos: generator: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return synth.Stats{}, fmt.Errorf("chaos: producer: %w", err)
	}
	defer cl.Close()
	st, err := synth.Produce(ctx, cl, partitioned(g.Source(), topic, partitions), synth.ProduceConfig{
		Count:        int64(events),
		Rate:         rate,
		DrainTimeout: 2 * time.Minute,
	})
	if err != nil {
		return st, fmt.Errorf("chaos: produce %s: %w", topic, err)
	}
	if st.Produced != int64(events) {
		return st, fmt.Errorf("chaos: produce %s: %d of %d records acknowledged (%d failed, %d canceled)",
			topic, st.Produced, events, st.Failed, st.Canceled)
	}
	return st, nil
}

// listed turns a kadm listing of one topic into offsets.
func listed(l kadm.ListedOffsets, topic string) (offsets, error) {
	if err := l.Error(); err != nil {
		return nil, err
	}
	o := offsets{}
	for p, lo := range l[topic] {
		o[p] = lo.Offset
	}
	return o, nil
}

// endOffsets returns the high watermarks of topic.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (offsets, error) {
	l, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("chaos: end offsets of %s: %w", topic, err)
	}
	o, err := listed(l, topic)
	if err != nil {
		return nil, fmt.Errorf("chaos: end offsets of %s: %w", topic, err)
	}
	return o, nil
}

// stable reports whether no transaction is open on any partition of the
// topics (last stable offset = high watermark).
func stable(ctx context.Context, adm *kadm.Client, topics ...string) (bool, error) {
	hw, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false, fmt.Errorf("chaos: end offsets: %w", err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return false, fmt.Errorf("chaos: stable offsets: %w", err)
	}
	if err := errors.Join(hw.Error(), lso.Error()); err != nil {
		return false, fmt.Errorf("chaos: offsets: %w", err)
	}
	ok := true
	hw.Each(func(h kadm.ListedOffset) {
		l, found := lso.Lookup(h.Topic, h.Partition)
		if !found || l.Offset != h.Offset {
			ok = false
		}
	})
	return ok, nil
}

// groupOffsets returns the offsets group has committed for topic.
func groupOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (offsets, error) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: offsets of group %s: %w", group, err)
	}
	o := offsets{}
	for p, r := range resp[topic] {
		o[p] = r.At
	}
	return o, nil
}

// committedSum is the sum of group's committed offsets of topic (each at
// least 0).
func committedSum(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	o, err := groupOffsets(ctx, adm, group, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range o {
		n += max(v, 0)
	}
	return n, nil
}

// topicRead is what readTopic saw of one topic.
type topicRead struct {
	// records is the number of data records; last the offset of each
	// partition's last data record.
	records int64
	last    offsets
}

// readTopic reads every committed data record of topic from the start to
// the current end (read_committed; transaction markers are kept to see the
// end but not passed to fn). Call it when no transaction is open on the
// topic.
func readTopic(ctx context.Context, brokers []string, topic string, fn func(*kgo.Record)) (topicRead, error) {
	res := topicRead{last: offsets{}}
	adm, cl0, err := admin(brokers)
	if err != nil {
		return res, err
	}
	end, err := endOffsets(ctx, adm, topic)
	cl0.Close()
	if err != nil {
		return res, err
	}
	start := map[int32]kgo.Offset{}
	pending := map[int32]int64{}
	for p, hw := range end {
		start[p] = kgo.NewOffset().AtStart()
		if hw > 0 {
			pending[p] = hw
		}
	}
	if len(pending) == 0 {
		return res, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return res, fmt.Errorf("chaos: consumer: %w", err)
	}
	defer cl.Close()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return res, fmt.Errorf("chaos: read %s: partitions %v not read to the end: %w",
				topic, slices.Sorted(maps.Keys(pending)), ctx.Err())
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("chaos: read %s partition %d: %w", t, p, err))
		})
		if ferr != nil {
			return res, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= pending[r.Partition]-1 {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			res.records++
			res.last[r.Partition] = r.Offset
			fn(r)
		})
	}
	return res, nil
}

// admin returns an admin client and the client under it (to close).
func admin(brokers []string) (*kadm.Client, *kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, nil, fmt.Errorf("chaos: admin client: %w", err)
	}
	return kadm.NewClient(cl), cl, nil
}
