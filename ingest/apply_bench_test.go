package ingest

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/bench/synth"
	"github.com/leadscore/leadscore/internal/hugepages"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

// BenchmarkDecodeApply measures what a worker does per touchpoint without
// Kafka, as it does it (worker.score): decode a group of
// scorer.PrefetchBatch records while the previous group's leads are
// prefetched, then score that group. The records are the synthetic
// generator's (bench/synth: 100k known leads plus anonymous
// visitors, hot leads, the default model, canonical JSON, no bad records or
// redeliveries), rendered ahead in chunks while the timer is stopped, and
// the engine is in steady state (every lead seen many times) first.
func BenchmarkDecodeApply(b *testing.B) {
	const chunk, warm = 1 << 18, 15 * 100_000
	g := synthRecords(b)
	var decs [2][scorer.PrefetchBatch]*Decoder
	for i := range decs {
		for j := range decs[i] {
			var err error
			if decs[i][j], err = NewDecoder(DecoderConfig{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	eng := scorer.NewEngine(models.Default())
	recs := make([]*kgo.Record, chunk)
	fill := func() {
		for i := range recs {
			recs[i] = g.Next()
		}
	}
	var tps [2][scorer.PrefetchBatch]scorer.Touchpoint
	var res scorer.Result
	var pf scorer.Prefetcher
	now := time.Now().UnixMilli()
	scored, mqls := 0, 0
	// run is worker.score without the outputs.
	run := func(recs []*kgo.Record) {
		cur, prev := 0, 0
		for len(recs) > 0 {
			n := min(len(recs), scorer.PrefetchBatch)
			for i, r := range recs[:n] {
				if err := decs[cur][i].Decode(r.Key, r.Value, r.Headers, &tps[cur][i]); err != nil {
					b.Fatal(err)
				}
				pf.Step()
			}
			pf.Finish()
			s, q := applyBatch(eng, tps[1-cur][:prev], now, &res)
			scored, mqls = scored+s, mqls+q
			pf.Start(eng, tps[cur][:n])
			prev, cur = n, 1-cur
			recs = recs[n:]
		}
		pf.Finish()
		s, q := applyBatch(eng, tps[1-cur][:prev], now, &res)
		scored, mqls = scored+s, mqls+q
	}
	for done := 0; done < warm; done += chunk {
		fill()
		run(recs)
		eng.Commit()
	}
	scored, mqls = 0, 0
	fill()
	benchHugePages(b)
	b.ReportAllocs()
	b.ResetTimer()
	next := 0
	for i := 0; i < b.N; {
		if next == len(recs) {
			b.StopTimer()
			eng.Commit()
			fill()
			benchHugePages(b)
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
		b.Fatalf("only %d of %d touchpoints scored (past synthHorizon records, event time is in the future: lower -benchtime)", scored, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(mqls)/float64(b.N), "mqls/event")
	b.ReportMetric(float64(eng.Len()), "leads")
}

// BenchmarkDecodeSynth and BenchmarkApplySynth split BenchmarkDecodeApply
// in two on the same records: decoding alone, and the engine alone
// (Prefetch and Apply over touchpoints decoded 4096 at a time while the
// timer is stopped, after the same warm-up).
func BenchmarkDecodeSynth(b *testing.B) {
	g := synthRecords(b)
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, 1<<16)
	for i := range recs {
		recs[i] = g.Next()
	}
	var tp scorer.Touchpoint
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i&(len(recs)-1)]
		if err := d.Decode(r.Key, r.Value, r.Headers, &tp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkApplySynth(b *testing.B) {
	const chunk, warm = 4096, 15 * 100_000
	g := synthRecords(b)
	decs := make([]*Decoder, chunk) // each touchpoint may alias its decoder
	for i := range decs {
		var err error
		if decs[i], err = NewDecoder(DecoderConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	tps := make([]scorer.Touchpoint, chunk)
	fill := func() {
		for i := range tps {
			r := g.Next()
			if err := decs[i].Decode(r.Key, r.Value, r.Headers, &tps[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	eng := scorer.NewEngine(models.Default())
	var res scorer.Result
	now := time.Now().UnixMilli()
	scored := 0
	run := func(tps []scorer.Touchpoint) {
		for len(tps) > 0 {
			n := min(len(tps), scorer.PrefetchBatch)
			s, _ := scoreBatch(eng, tps[:n], now, &res)
			scored += s
			tps = tps[n:]
		}
	}
	for done := 0; done < warm; done += chunk {
		fill()
		run(tps)
		eng.Commit()
	}
	scored = 0
	benchHugePages(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		b.StopTimer()
		fill()
		if i%(1<<18) == 0 {
			benchHugePages(b)
		}
		b.StartTimer()
		n := min(b.N-i, chunk)
		run(tps[:n])
		eng.Commit()
		i += n
	}
	b.StopTimer()
	if scored < b.N*9/10 {
		b.Fatalf("only %d of %d touchpoints scored (past synthHorizon records, event time is in the future: lower -benchtime)", scored, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(eng.Len()), "leads")
}

// scoreBatch scores tps (at most scorer.PrefetchBatch), Prefetch then
// Apply each (the engine alone, without the worker's overlap with
// decoding), and counts those scored and those qualified.
func scoreBatch(eng *scorer.Engine, tps []scorer.Touchpoint, now int64, res *scorer.Result) (scored, mqls int) {
	eng.Prefetch(tps)
	return applyBatch(eng, tps, now, res)
}

// applyBatch applies tps and counts those scored and those qualified.
func applyBatch(eng *scorer.Engine, tps []scorer.Touchpoint, now int64, res *scorer.Result) (scored, mqls int) {
	for i := range tps {
		eng.Apply(&tps[i], now, res)
		if res.Outcome == scorer.Scored {
			scored++
		}
		if res.Qualified {
			mqls++
		}
	}
	return scored, mqls
}

// benchHugePages gives the heap, with LEADSCORE_BENCH_HUGE_PAGES=1, the
// advice `leadscore run --huge-pages` gives it (internal/hugepages):
// transparent huge pages where the kernel leaves them to madvise. The
// benchmarks call it, with the timer stopped, after the warm-up and as the
// heap grows. By default they leave the heap as `leadscore run` does by
// default (bench/RESULTS.md has both).
func benchHugePages(b *testing.B) {
	if os.Getenv("LEADSCORE_BENCH_HUGE_PAGES") != "1" {
		return
	}
	if _, err := hugepages.Advise(true); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		b.Logf("huge pages: %v", err)
	}
}

// synthHorizon is how many records the synthetic benchmarks may use
// (warm-up included) before event time passes the wall clock and
// touchpoints are refused as future: 97 days of event time, more than
// -benchtime 10s takes.
const synthHorizon = 1 << 24

// synthRecords returns the synthetic benchmarks' generator: 100k leads,
// a record every 500 ms of event time, ending synthHorizon records later
// at about now. LEADSCORE_BENCH_LEADS sets another number of leads, with
// event time stepping as much faster or slower, so that each lead gets the
// same touchpoints per day of event time: the same work per touchpoint
// over a smaller or larger working set. At least 1000: event time then
// starts 27 years back (fewer leads would step it past time.Duration's
// range over synthHorizon records).
func synthRecords(b *testing.B) *synth.Generator {
	leads, step := 100_000, 500*time.Millisecond
	if s := os.Getenv("LEADSCORE_BENCH_LEADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 || n > 10_000_000 {
			b.Fatalf("LEADSCORE_BENCH_LEADS=%q: want a number of leads from 1000 to 10000000", s)
		}
		leads, step = n, step*100_000/time.Duration(n)
	}
	start := time.Now().Add(-time.Duration(synthHorizon) * step)
	g, err := synth.NewGenerator(synth.GenConfig{Seed: 7, Leads: leads, Step: step, Start: start,
		BadFraction: -1, DuplicateFraction: -1})
	if err != nil {
		b.Fatal(err)
	}
	return g
}
