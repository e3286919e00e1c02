package scorer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/leadscore/leadscore/internal/hugepages"
	"github.com/leadscore/leadscore/models"
)

// benchModel is a realistic model: a dozen rules over the usual types,
// some with property globs and caps, three fit rules.
func benchModel() *models.Model {
	f := func(v float64) *float64 { return &v }
	return &models.Model{
		Name: "bench", Version: "1",
		HalfLife: 14 * 24 * time.Hour, MaxLateness: 7 * 24 * time.Hour,
		MaxFutureSkew: 5 * time.Minute, DedupeWindow: 24 * time.Hour,
		TopContributors: 5,
		Rules: []models.Rule{
			{Type: "page_view", Points: 1, Cap: 10},
			{Type: "page_view", Properties: []models.PropertyMatch{{Key: "url", Glob: "*/pricing*"}}, Points: 5, Cap: 15},
			{Type: "page_view", Properties: []models.PropertyMatch{{Key: "url", Glob: "*/docs/*"}}, Points: 2, Cap: 10},
			{Type: "email_open", Points: 1, Cap: 3},
			{Type: "email_click", Points: 3, Cap: 9},
			{Type: "form_submit", Points: 10},
			{Type: "form_submit", Properties: []models.PropertyMatch{{Key: "form_id", Glob: "contact-*"}}, Points: 20},
			{Type: "content_download", Points: 8},
			{Type: "webinar_attended", Points: 15},
			{Type: "demo_request", Points: 40},
			{Type: "unsubscribe", Points: -20},
			{Type: "email_bounce", Channel: "email", Points: -5},
		},
		Fit: []models.FitRule{
			{Trait: "title", Glob: "*VP*", Points: 10},
			{Trait: "industry", Equals: []string{"software", "saas"}, Points: 5},
			{Trait: "company_size", Min: f(200), Points: 10},
		},
		Thresholds: models.Thresholds{MQL: 100, FitMin: f(10), Rearm: 30, Cooldown: 7 * 24 * time.Hour},
	}
}

// benchStream generates touchpoints for nLeads leads, stepMillis of event
// time apart, with a mix of types close to real traffic.
type benchStream struct {
	rng    *rand.Rand
	leads  []string
	ids    []string
	tps    []Touchpoint
	traits [][]Attr
	t0     int64
	step   int64 // ms of event time between touchpoints
	i      int64
	bufs   [benchRing][]byte // the last benchRing touchpoints' strings stay valid
	attrs  [benchRing][]Attr
	num    []byte
	zipf   *rand.Zipf // when set, picks leads with a skew; else uniformly
}

func newBenchStream(nLeads, nIDs int, stepMillis int64) *benchStream {
	s := &benchStream{rng: rand.New(rand.NewPCG(1, 2)), t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), step: stepMillis}
	for i := range s.bufs { // now, so that heap-bytes/lead leaves them out
		s.bufs[i] = make([]byte, 0, 256)
		s.attrs[i] = make([]Attr, 0, 3)
	}
	for i := range nLeads {
		s.leads = append(s.leads, fmt.Sprintf("lead-%07d@example.com", i))
	}
	for i := range nIDs {
		s.ids = append(s.ids, fmt.Sprintf("evt-%016x", i))
	}
	type kind struct {
		weight int
		tp     Touchpoint
	}
	kinds := []kind{
		{50, Touchpoint{Type: "page_view", Channel: "web", Props: []Attr{{"url", "https://acme.test/blog/post"}}}},
		{10, Touchpoint{Type: "page_view", Channel: "web", Props: []Attr{{"url", "https://acme.test/pricing"}}}},
		{8, Touchpoint{Type: "page_view", Channel: "web", Props: []Attr{{"url", "https://acme.test/docs/api"}}}},
		{12, Touchpoint{Type: "email_open", Channel: "email", Campaign: "nurture-q1"}},
		{6, Touchpoint{Type: "email_click", Channel: "email", Campaign: "nurture-q1"}},
		{3, Touchpoint{Type: "form_submit", Channel: "web", Props: []Attr{{"form_id", "newsletter"}}}},
		{1, Touchpoint{Type: "form_submit", Channel: "web", Props: []Attr{{"form_id", "contact-sales"}}}},
		{3, Touchpoint{Type: "content_download", Channel: "web", Campaign: "ebook-2026"}},
		{2, Touchpoint{Type: "webinar_attended", Channel: "event", Campaign: "webinar-march"}},
		{1, Touchpoint{Type: "demo_request", Channel: "sales"}},
		{1, Touchpoint{Type: "unsubscribe", Channel: "email"}},
		{1, Touchpoint{Type: "email_bounce", Channel: "email"}},
		{2, Touchpoint{Type: "social_like", Channel: "social"}},
	}
	for _, k := range kinds {
		for range k.weight {
			s.tps = append(s.tps, k.tp)
		}
	}
	for i := range nLeads {
		s.traits = append(s.traits, []Attr{
			{"title", benchTitles[i%len(benchTitles)]},
			{"industry", benchIndustries[i%len(benchIndustries)]},
			{"company_size", fmt.Sprint(50 + i%500)},
		})
	}
	return s
}

var (
	benchTitles     = []string{"VP Marketing", "Engineer", "CTO", "Analyst"}
	benchIndustries = []string{"software", "retail", "saas"}
)

// next fills tp with the next touchpoint and returns the wall clock.
func (s *benchStream) next(tp *Touchpoint) int64 {
	s.i++
	// One random word gives the lead (top 32 bits), the type (next 16) and
	// the lateness (low 16), each by a multiply-shift into its range.
	r := s.rng.Uint64()
	var li int
	if s.zipf != nil {
		li = int(s.zipf.Uint64())
	} else {
		li = int((r >> 32) * uint64(len(s.leads)) >> 32)
	}
	*tp = s.tps[(r>>16&0xffff)*uint64(len(s.tps))>>16]
	// Like the decoder, write the ids into a reused buffer: the engine sees
	// strings that are hot in the cache and must copy what it keeps. The
	// lead key is the same as s.leads[li], formatted rather than read from
	// a table that would miss the cache.
	buf := &s.bufs[s.i%benchRing]
	b := append((*buf)[:0], "lead-0000000"...)
	s.num = strconv.AppendInt(s.num[:0], int64(li), 10)
	digits := s.num
	copy(b[len(b)-len(digits):], digits)
	b = append(b, "@example.com"...)
	nl := len(b)
	*buf = append(b, s.ids[s.i%int64(len(s.ids))]...)
	tp.LeadID = unsafe.String(&(*buf)[0], nl)
	tp.EventID = unsafe.String(&(*buf)[nl], len(*buf)-nl)
	tp.OccurredAt = s.t0 + s.i*s.step - int64((r&0xffff)*60_000>>16) // up to a minute out of order
	if s.i%10 == 0 {
		// Like the decoder again: the trait values in the same buffer,
		// the same as s.traits[li].
		off := len(*buf)
		*buf = strconv.AppendInt(*buf, int64(50+li%500), 10)
		attrs := append(s.attrs[s.i%benchRing][:0],
			Attr{"title", benchTitles[li%len(benchTitles)]},
			Attr{"industry", benchIndustries[li%len(benchIndustries)]},
			Attr{"company_size", unsafe.String(&(*buf)[off], len(*buf)-off)})
		s.attrs[s.i%benchRing] = attrs
		tp.Traits = attrs
	}
	return s.t0 + s.i*s.step
}

const (
	benchCommitEvery = 4096
	// benchRing touchpoints are generated at a time, with the timer
	// stopped, before the engine takes them: the engine benchmarks time the
	// engine, not the generator.
	benchRing = benchCommitEvery
)

// BenchmarkApply measures the engine alone in steady state: 100k known
// leads picked uniformly at random (the worst case for the CPU caches), the
// realistic mix above, a Commit every 4096 events (so nearly every event
// pays for the undo record of its lead's first change in the transaction).
// The touchpoints are generated 4096 at a time with the timer stopped, as
// decoded touchpoints whose strings are fresh in the caches.
func BenchmarkApply(b *testing.B) { benchmarkApply(b, false, benchFull) }

// BenchmarkApplyPrefetch is BenchmarkApply the way Engine.Prefetch is
// meant to be used: Prefetch for each PrefetchBatch touchpoints, then
// Apply for each. Its ratio to BenchmarkApply is what Prefetch gains (the
// pipeline gains more by overlapping the walk with decoding: ingest's
// BenchmarkDecodeApply).
func BenchmarkApplyPrefetch(b *testing.B) { benchmarkApply(b, false, benchFullPrefetch) }

// BenchmarkApplyHot is BenchmarkApply with 10k leads, each getting
// touchpoints at the same rate of event time as there (so the same number
// of remembered ids, groups and cap entries): a working set ten times
// smaller, friendlier to the CPU caches.
func BenchmarkApplyHot(b *testing.B) { benchmarkApply(b, false, benchHot) }

// BenchmarkApplyHotPrefetch is BenchmarkApplyHot with Prefetch.
func BenchmarkApplyHotPrefetch(b *testing.B) { benchmarkApply(b, false, benchHotPrefetch) }

// BenchmarkApplyTxn is BenchmarkApply plus AppendDirty before each Commit:
// the engine's whole cost per event in the pipeline, changelog encoding
// included.
func BenchmarkApplyTxn(b *testing.B) { benchmarkApply(b, true, benchFullPrefetch) }

// BenchmarkApplySkewed is BenchmarkApply with leads picked from a Zipf
// distribution (s = 1.1): a few active leads make most of the traffic, as
// in real sessions.
func BenchmarkApplySkewed(b *testing.B) { benchmarkApply(b, false, benchSkewedPrefetch) }

// benchSetup says which leads a steady-state benchmark draws from.
type benchSetup struct {
	leads    int
	skewed   bool
	prefetch bool // call Prefetch as the pipeline does (not part of the engine built)
}

var (
	benchFull           = benchSetup{leads: 100_000}
	benchFullPrefetch   = benchSetup{leads: 100_000, prefetch: true}
	benchHot            = benchSetup{leads: 10_000}
	benchHotPrefetch    = benchSetup{leads: 10_000, prefetch: true}
	benchSkewedPrefetch = benchSetup{leads: 100_000, skewed: true, prefetch: true}
)

// steadyEngine is an engine and stream built once per setup and shared by
// the benchmarks: every lead known, with its slices at their steady size.
type steadyEngine struct {
	e           *Engine
	s           *benchStream
	heapPerLead float64
}

var steady = map[benchSetup]*steadyEngine{}

func steadyState(setup benchSetup) *steadyEngine {
	setup.prefetch = false // same engine with or without
	if st := steady[setup]; st != nil {
		return st
	}
	// Event time advances 1 s per touchpoint for 100k leads, 10 s for 10k:
	// each lead sees the same touchpoints per day of event time.
	s := newBenchStream(setup.leads, 1<<20+7, 100_000*1000/int64(setup.leads))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := NewEngine(benchModel())
	var tp Touchpoint
	var res Result
	for i := range 15 * setup.leads { // every lead known, slices at their steady size
		now := s.next(&tp)
		e.Apply(&tp, now, &res)
		if i%benchCommitEvery == 0 {
			e.Commit()
		}
	}
	e.Commit()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if setup.skewed {
		s.zipf = rand.NewZipf(s.rng, 1.1, 1, uint64(len(s.leads)-1))
	}
	st := &steadyEngine{e: e, s: s, heapPerLead: float64(after.HeapAlloc-before.HeapAlloc) / float64(e.Len())}
	steady[setup] = st
	// LEADSCORE_BENCH_HUGE_PAGES=1: the heap on transparent huge pages, as
	// `leadscore run --huge-pages` puts it (internal/hugepages).
	if os.Getenv("LEADSCORE_BENCH_HUGE_PAGES") == "1" {
		if _, err := hugepages.Advise(true); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			panic(err)
		}
	}
	return st
}

func benchmarkApply(b *testing.B, changelog bool, setup benchSetup) {
	st := steadyState(setup)
	e, s := st.e, st.s
	tps := make([]Touchpoint, benchRing)
	nows := make([]int64, benchRing)
	var res Result
	var bytes int
	sink := func(_ string, state []byte) { bytes += len(state) }
	mqls, dirty := 0, 0
	var cpu time.Duration // process CPU time while the timer runs
	cpuOK := true
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		// A transaction's worth of touchpoints, generated with the timer
		// stopped (their strings are fresh in the caches, as a decoder's
		// output is), then applied in batches as the pipeline does.
		b.StopTimer()
		n := min(benchRing, b.N-i)
		for k := range n {
			nows[k] = s.next(&tps[k])
		}
		b.StartTimer()
		cpu0, ok0 := processCPU()
		for k := 0; k < n; k += PrefetchBatch {
			batch := tps[k:min(k+PrefetchBatch, n)]
			if setup.prefetch {
				e.Prefetch(batch)
			}
			for j := range batch {
				e.Apply(&batch[j], nows[k+j], &res)
				if res.Qualified {
					mqls++
				}
			}
		}
		dirty += e.Dirty()
		if changelog {
			e.AppendDirty(sink)
		}
		e.Commit()
		cpu1, ok1 := processCPU()
		cpu += cpu1 - cpu0
		cpuOK = cpuOK && ok0 && ok1
		i += n
	}
	b.StopTimer()
	if cpuOK {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(mqls)/float64(b.N), "mqls/event")
	b.ReportMetric(st.heapPerLead, "heap-bytes/lead")
	if changelog && dirty > 0 {
		b.ReportMetric(float64(bytes)/float64(dirty), "state-bytes/lead")
	}
}

// BenchmarkApplyNewLeads measures touchpoints that each create a lead.
func BenchmarkApplyNewLeads(b *testing.B) {
	s := newBenchStream(1, 1<<20+7, 1000)
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = fmt.Sprintf("anon-%016x", i)
	}
	e := NewEngine(benchModel())
	var tp Touchpoint
	var res Result
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(keys) == 0 && i > 0 {
			b.StopTimer()
			e = NewEngine(benchModel())
			b.StartTimer()
		}
		now := s.next(&tp)
		tp.LeadID, tp.AnonymousID = "", keys[i%len(keys)]
		e.Apply(&tp, now, &res)
		if i%benchCommitEvery == benchCommitEvery-1 {
			e.Commit()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
