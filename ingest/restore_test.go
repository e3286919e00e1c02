package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

// TestGrowForRestore checks the growth policy on its own: room for at
// least the table's size again, within the estimate of the records left.
func TestGrowForRestore(t *testing.T) {
	model := testModel(t)
	fill := func(e *scorer.Engine, from, n int) {
		t.Helper()
		src := scorer.NewEngine(model)
		var res scorer.Result
		for i := from; i < from+n; i++ {
			lead := fmt.Sprintf("lead-%d", i)
			tp := scorer.Touchpoint{EventID: lead, LeadID: lead, Type: "page_view", OccurredAt: 1_700_000_000_000}
			src.Apply(&tp, tp.OccurredAt, &res)
			state, _ := src.EncodeLead(lead, nil)
			if err := e.Restore(lead, state); err != nil {
				t.Fatal(err)
			}
		}
	}
	e := scorer.NewEngine(model)
	room := func(want int) {
		t.Helper()
		if r := e.Room(); r != want {
			t.Fatalf("room %d with %d leads, want %d", r, e.Len(), want)
		}
	}
	// First fetch: 100 records at offsets 0-99 of 1000: room for them.
	growForRestore(e, 100, 0, 99, 1000)
	room(100)
	fill(e, 0, 100)
	// The table is full: it doubles (room for 100 more), though the
	// partition may still hold 900.
	growForRestore(e, 100, 100, 199, 1000)
	room(100)
	fill(e, 100, 100)
	// A fetch that fits, or an empty one, changes nothing.
	growForRestore(e, 0, 200, 199, 1000)
	room(0)
	// One record in ten offsets (updates compacted away, markers): about
	// 80 records left in the 800 offsets; that bounds the doubling (200).
	growForRestore(e, 10, 200, 299, 1000)
	room(80)
	fill(e, 200, 80)
	// The last fetch: room for its records only.
	growForRestore(e, 50, 950, 999, 1000)
	room(50)
	fill(e, 280, 5)
	// Spare room under a quarter of the leads stays; more is given back.
	e.Trim()
	room(45)
	e.Grow(1000)
	room(1000)
	e.Trim()
	room(0)
	if e.Len() != 285 {
		t.Fatalf("%d leads, want 285", e.Len())
	}
}

// TestRestoreTableSizeFake restores a changelog with three records per
// lead, written in many transactions (markers between them), and checks
// that every lead is back and that no engine keeps more than a quarter of
// spare room.
func TestRestoreTableSizeFake(t *testing.T) {
	const parts, leads = 3, 6000
	c := kafkatest.Fake(t)
	topic := c.Topic(t, parts, nil)
	cl, err := kgo.NewClient(append(c.Opts(), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("restore-size-test"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	model := testModel(t)
	src := scorer.NewEngine(model)
	var res scorer.Result
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	want := make(map[string][]byte)
	for round := range 3 {
		for i0 := 0; i0 < leads; i0 += 500 {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for i := i0; i < i0+500; i++ {
				lead := fmt.Sprintf("lead-%05d", i)
				tp := scorer.Touchpoint{EventID: fmt.Sprintf("%s-%d", lead, round), LeadID: lead, Type: "page_view",
					OccurredAt: t0 + int64(round)*60_000}
				src.Apply(&tp, time.Now().UnixMilli(), &res)
				state, _ := src.EncodeLead(lead, nil)
				want[lead] = state
				cl.Produce(ctx, &kgo.Record{Key: []byte(lead), Value: state, Partition: int32(i % parts)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
		src.Commit()
	}

	cfg := restoreConfig(t, c, topic, model)
	engines, stats, err := restore(ctx, cfg, slog.New(slog.DiscardHandler), newMetrics(nil, &Pipeline{}), []int32{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if stats.records != 3*leads {
		t.Fatalf("%d records restored, want %d", stats.records, 3*leads)
	}
	total := 0
	for p, e := range engines {
		total += e.Len()
		if e.Room() > e.Len()/4 {
			t.Errorf("partition %d: %d leads, room for %d more: the table was not trimmed", p, e.Len(), e.Room())
		}
		for lead, state := range want {
			if got, ok := e.EncodeLead(lead, nil); ok && string(got) != string(state) {
				t.Fatalf("partition %d: %s restored to a different state", p, lead)
			}
		}
	}
	if total != leads {
		t.Fatalf("%d leads restored, want %d", total, leads)
	}
}

// TestRestoreRefusesNewerState: a changelog record in a format version
// newer than this release's fails the restore (an older instance must not
// start those leads afresh and overwrite them), where a corrupt record
// only costs its lead; a version 1 record restores.
func TestRestoreRefusesNewerState(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := c.Topic(t, 1, nil)
	cl, err := kgo.NewClient(append(c.Opts(), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	model := testModel(t)
	src := scorer.NewEngine(model)
	var res scorer.Result
	tp := scorer.Touchpoint{EventID: "e1", LeadID: "a", Type: "page_view", OccurredAt: time.Now().Add(-time.Hour).UnixMilli()}
	src.Apply(&tp, time.Now().UnixMilli(), &res)
	good, _ := src.EncodeLead("a", nil)
	produce := func(key string, value []byte) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("a", good)
	produce("b", []byte{scorer.StateVersion, 0xff}) // corrupt: lead b starts afresh
	cfg := restoreConfig(t, c, topic, model)
	engines, _, err := restore(ctx, cfg, slog.New(slog.DiscardHandler), newMetrics(nil, &Pipeline{}), []int32{0})
	if err != nil || engines[0].Len() != 1 {
		t.Fatalf("corrupt record: %v", err)
	}
	newer := append([]byte{scorer.StateVersion + 1}, good[1:]...)
	produce("c", newer)
	_, _, err = restore(ctx, cfg, slog.New(slog.DiscardHandler), newMetrics(nil, &Pipeline{}), []int32{0})
	if !errors.Is(err, scorer.ErrNewerState) {
		t.Fatalf("newer record: %v, want ErrNewerState", err)
	}
}

// restoreConfig is a valid Config restoring from the changelog topic of
// the fake cluster c.
func restoreConfig(t *testing.T, c *kafkatest.Cluster, topic string, model *models.Model) Config {
	t.Helper()
	cfg := Config{Kafka: c.Opts(), Model: model, Topics: Topics{Touchpoints: topic + ".in", State: topic}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}
