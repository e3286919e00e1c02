package ingest

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/bench/synth"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

// BenchmarkDecodeApply measures what a worker does per touchpoint without
// Kafka, as it does it: decode scorer.PrefetchBatch records, Prefetch,
// score each. The records are the
// synthetic generator's (bench/synth: 100k known leads plus anonymous
// visitors, hot leads, the default model, canonical JSON, no bad records or
// redeliveries), rendered ahead in chunks while the timer is stopped, and
// the engine is in steady state (every lead seen many times) first.
func BenchmarkDecodeApply(b *testing.B) {
	const leads, chunk, warm = 100_000, 1 << 18, 15 * 100_000
	step := 500 * time.Millisecond
	// Event time ends about now: keep it out of the future.
	start := time.Now().Add(-time.Duration(warm+chunk*16) * step)
	g, err := synth.NewGenerator(synth.GenConfig{Seed: 7, Leads: leads, Step: step, Start: start,
		BadFraction: -1, DuplicateFraction: -1})
	if err != nil {
		b.Fatal(err)
	}
	var decs [scorer.PrefetchBatch]*Decoder
	for i := range decs {
		var err error
		if decs[i], err = NewDecoder(DecoderConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	eng := scorer.NewEngine(models.Default())
	recs := make([]*kgo.Record, chunk)
	fill := func() {
		for i := range recs {
			recs[i] = g.Next()
		}
	}
	var tps [scorer.PrefetchBatch]scorer.Touchpoint
	var res scorer.Result
	now := time.Now().UnixMilli()
	scored, mqls := 0, 0
	run := func(recs []*kgo.Record) {
		for len(recs) > 0 {
			n := min(len(recs), scorer.PrefetchBatch)
			for i, r := range recs[:n] {
				if err := decs[i].Decode(r.Key, r.Value, r.Headers, &tps[i]); err != nil {
					b.Fatal(err)
				}
			}
			eng.Prefetch(tps[:n])
			for i := range n {
				eng.Apply(&tps[i], now, &res)
				if res.Outcome == scorer.Scored {
					scored++
				}
				if res.Qualified {
					mqls++
				}
			}
			recs = recs[n:]
		}
	}
	for done := 0; done < warm; done += chunk {
		fill()
		run(recs)
		eng.Commit()
	}
	scored, mqls = 0, 0
	fill()
	b.ReportAllocs()
	b.ResetTimer()
	next := 0
	for i := 0; i < b.N; {
		if next == len(recs) {
			b.StopTimer()
			eng.Commit()
			fill()
			next = 0
			b.StartTimer()
		}
		n := min(b.N-i, len(recs)-next, 4096)
		run(recs[next : next+n])
		eng.Commit() // a transaction per 4096 records, as BenchmarkApply
		next += n
		i += n
	}
	b.StopTimer()
	if scored < b.N*9/10 {
		b.Fatalf("only %d of %d touchpoints scored", scored, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(mqls)/float64(b.N), "mqls/event")
	b.ReportMetric(float64(eng.Len()), "leads")
}
