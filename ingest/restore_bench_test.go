package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

// BenchmarkRestore measures state restore on partition assignment: a
// compacted changelog of LEADSCORE_RESTORE_LEADS leads (default 200000) over
// 6 partitions on the test broker (real Kafka when one is found), read back
// into engines by restore. It reports leads/s and the heap held per lead.
//
//	go test ./ingest -run '^$' -bench Restore -benchtime 1x
//	LEADSCORE_RESTORE_LEADS=10000000 go test ./ingest -run '^$' -bench Restore -benchtime 1x -timeout 30m
func BenchmarkRestore(b *testing.B) {
	n := 200_000
	if v := os.Getenv("LEADSCORE_RESTORE_LEADS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	const parts = 6
	c := kafkatest.Broker(b)
	compact := "compact"
	topic := c.Topic(b, parts, map[string]*string{"cleanup.policy": &compact})
	cl, err := kgo.NewClient(append(c.Opts(), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()

	// Leads with a realistic state: a few touchpoints each, traits, an id.
	model := models.Default()
	eng := scorer.NewEngine(model)
	t0 := time.Now().Add(-72 * time.Hour).UnixMilli()
	var res scorer.Result
	types := []string{"page_view", "email_open", "email_click", "webinar_attended", "form_submit"}
	ctx := context.Background()
	var produced int64
	start := time.Now()
	for i := range n {
		lead := fmt.Sprintf("lead-%08d", i)
		for j := range 3 {
			tp := scorer.Touchpoint{
				EventID: fmt.Sprintf("%s-%d", lead, j), LeadID: lead, AccountID: "acme.test",
				Type: types[(i+j)%len(types)], Channel: "web", OccurredAt: t0 + int64(i%86400000) + int64(j)*60000,
				Traits: []scorer.Attr{{Key: "title", Value: "VP Marketing"}, {Key: "company_size", Value: "800"}},
			}
			eng.Apply(&tp, time.Now().UnixMilli(), &res)
		}
		state, ok := eng.EncodeLead(lead, nil)
		if !ok {
			b.Fatal("lead not found")
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(lead), Value: state, Partition: int32(i % parts)}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
		produced += int64(len(state))
		if i%100_000 == 99_999 {
			eng = scorer.NewEngine(model) // keep the builder's memory bounded
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("changelog: %d leads, %.1f MB of state, written in %v", n, float64(produced)/1e6, time.Since(start).Round(time.Millisecond))

	cfg := Config{Kafka: c.Opts(), Model: model, Topics: Topics{Touchpoints: topic + ".in", State: topic}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	m := newMetrics(nil, &Pipeline{})
	log := slog.New(slog.DiscardHandler)
	all := make([]int32, parts)
	for i := range all {
		all[i] = int32(i)
	}
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		t := time.Now()
		engines, stats, err := restore(ctx, cfg, log, m, all)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(t)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if stats.leads != n {
			b.Fatalf("restored %d leads, want %d", stats.leads, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "leads/s")
		b.ReportMetric(took.Seconds(), "restore-s")
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heap-bytes/lead")
		runtime.KeepAlive(engines)
	}
}
