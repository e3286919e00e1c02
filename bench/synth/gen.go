package synth

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the topic records are produced to unless configured.
const DefaultTopic = "leadscore.touchpoints"

// HeaderExpect is the header a deliberately bad record carries: its value
// is the dead-letter reason the pipeline should give it ("invalid_json",
// "missing_field", "bad_time", "wrong_type", "field_too_long", "future",
// "missing_key", "key_mismatch"). Good records and duplicates carry no
// such header.
const HeaderExpect = "synth-expect"

// Bad-record kinds, named by the dead-letter reason they should get.
var badReasons = [...]string{
	"invalid_json", "missing_field", "bad_time", "wrong_type",
	"field_too_long", "future", "missing_key", "key_mismatch",
}

// BadReasons returns the dead-letter reasons the generator's bad records
// are made to get, the values of HeaderExpect.
func BadReasons() []string { return append([]string(nil), badReasons[:]...) }

// Formats the generator can write.
const (
	FormatJSON        = "json"        // leadscore's canonical JSON
	FormatSegment     = "segment"     // Segment page and track calls
	FormatCloudEvents = "cloudevents" // CloudEvents 1.0, structured mode
)

// GenConfig configures a Generator. The zero value is valid: live traffic
// in canonical JSON about 10,000 leads.
type GenConfig struct {
	// Seed makes the stream reproducible: the same seed and config give the
	// same records (in simulated mode; live mode takes event times from the
	// clock and makes event ids unique per run). Default 1.
	Seed int64
	// Leads is the number of distinct known leads ("lead-000000" ...).
	// Anonymous visitors number half as many. Default 10000.
	Leads int
	// HotFraction is the share of leads that are hot: they walk a buying
	// journey (pricing page, webinar, demo request) and become MQLs under
	// the default model. Hot leads together get ten times their share of
	// the traffic, at most half of it. Default 0.02; negative means none.
	HotFraction float64
	// BadFraction is the share of records that are deliberately unusable
	// (invalid JSON, no event id, bad or far-future time, wrong type,
	// over-long id, empty or mismatched key; each under 64 KiB), marked
	// with the HeaderExpect header. Default 0.01; negative means none.
	BadFraction float64
	// DuplicateFraction is the share of records that re-send a recent good
	// record unchanged (same key, value and event_id), as a retrying
	// collector does. Default 0.005; negative means none.
	DuplicateFraction float64
	// Step selects the clock. Zero (the default) is live mode: event time
	// follows the wall clock, occurred_at being now minus a small random
	// delay, a few records late by minutes to hours (at most 3 days, well
	// inside the default model's 7-day max_lateness). A positive Step is
	// simulated mode: event time starts at Start and advances by an
	// exponentially distributed amount of mean Step per record, with the
	// same delays, never before Start; the stream is then a pure function
	// of the config. Keep Start + records*Step in the past if the records
	// are to be scored (the pipeline dead-letters event times more than
	// max_future_skew ahead of its clock).
	Step time.Duration
	// Start is the event time of the first record in simulated mode.
	// Default: the time NewGenerator is called. Must be zero in live mode.
	Start time.Time
	// Now is the clock of live mode. Default time.Now.
	Now func() time.Time
	// Formats is the mix of encodings, each record taking one at random
	// (repeat a name to weight it): "json", "segment", "cloudevents".
	// Default ["json"].
	Formats []string
	// Topic is set on every record. Default "leadscore.touchpoints".
	Topic string
}

// Validate reports the first invalid field, by name. Zero values mean the
// default.
func (c *GenConfig) Validate() error {
	frac := func(name string, f float64) error {
		if math.IsNaN(f) || f > 1 || math.IsInf(f, 0) {
			return fmt.Errorf("synth: GenConfig.%s: %v not in [0, 1] (negative means none)", name, f)
		}
		return nil
	}
	switch {
	case c.Leads < 0 || c.Leads > 1<<31-1:
		return fmt.Errorf("synth: GenConfig.Leads: %d not in [1, %d] (0 means 10000)", c.Leads, 1<<31-1)
	case c.Step < 0:
		return fmt.Errorf("synth: GenConfig.Step: %v is negative", c.Step)
	case c.Step == 0 && !c.Start.IsZero():
		return errors.New("synth: GenConfig.Start: set in live mode (Step 0); set Step for simulated time")
	}
	if err := frac("HotFraction", c.HotFraction); err != nil {
		return err
	}
	if err := frac("BadFraction", c.BadFraction); err != nil {
		return err
	}
	if err := frac("DuplicateFraction", c.DuplicateFraction); err != nil {
		return err
	}
	if b, d := max(c.BadFraction, 0), max(c.DuplicateFraction, 0); b+d > 1 {
		return fmt.Errorf("synth: GenConfig.DuplicateFraction: %v plus BadFraction %v exceeds 1", d, b)
	}
	for i, f := range c.Formats {
		if _, ok := parseFormat(f); !ok {
			return fmt.Errorf("synth: GenConfig.Formats[%d]: unknown format %q (want json, segment or cloudevents)", i, f)
		}
	}
	return nil
}

type format uint8

const (
	fmtJSON format = iota
	fmtSegment
	fmtCloudEvents
)

func parseFormat(s string) (format, bool) {
	switch s {
	case FormatJSON:
		return fmtJSON, true
	case FormatSegment:
		return fmtSegment, true
	case FormatCloudEvents:
		return fmtCloudEvents, true
	}
	return 0, false
}

// fraction applies the "zero means default, negative means none" rule.
func fraction(f, def float64) float64 {
	switch {
	case f == 0:
		return def
	case f < 0:
		return 0
	}
	return f
}

// Counts says what a Generator has made so far.
type Counts struct {
	// Records is every record returned by Next.
	Records int64
	// Bad is the number of deliberately bad records, BadByReason the same
	// by expected dead-letter reason (HeaderExpect).
	Bad         int64
	BadByReason map[string]int64
	// Duplicates is the number of re-sent records.
	Duplicates int64
	// Hot is the number of good records about hot leads; Anonymous the
	// number of good records with only an anonymous id.
	Hot       int64
	Anonymous int64
}

// dupEntry is a recent good record that may be re-sent.
type dupEntry struct {
	key, value []byte
	headers    []kgo.RecordHeader
	at         int64
}

const (
	dupRing     = 256
	anonShare   = 0.05 // of good records: anonymous page views
	maxHotShare = 0.5
)

// Generator makes a deterministic stream of synthetic touchpoint records:
// most leads with a few page views and e-mail opens, lead popularity
// skewed (Zipf), hot leads walking a buying journey, anonymous visitors,
// a few bad records and duplicates. It is not safe for concurrent use.
type Generator struct {
	cfg      GenConfig
	pop      population
	formats  []format
	rng      *rand.Rand
	ids      *rand.Rand // event ids only
	zipf     *rand.Zipf // popularity rank of ordinary leads
	live     bool
	now      func() time.Time
	startMs  int64
	cursor   float64 // simulated event time, Unix ms
	stepMs   float64
	bad      float64
	dup      float64
	hotShare float64
	hot      []int32  // indices of hot leads
	hotBits  []uint64 // membership of hot
	stage    []uint8  // journey position of each hot lead
	t        touch
	enc      []byte
	ring     [dupRing]dupEntry
	ringN    int
	ringPos  int
	counts   Counts
}

// NewGenerator validates cfg, applies the defaults and returns a Generator.
func NewGenerator(cfg GenConfig) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Leads == 0 {
		cfg.Leads = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = []string{FormatJSON}
	}
	cfg.Formats = append([]string(nil), cfg.Formats...)
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	g := &Generator{
		cfg:  cfg,
		pop:  newPopulation(cfg.Seed, cfg.Leads),
		rng:  rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		live: cfg.Step == 0,
		now:  cfg.Now,
		bad:  fraction(cfg.BadFraction, 0.01),
		dup:  fraction(cfg.DuplicateFraction, 0.005),
	}
	for _, f := range cfg.Formats {
		ff, _ := parseFormat(f)
		g.formats = append(g.formats, ff)
	}
	idNonce := uint64(0)
	if g.live {
		// Live runs with the same seed must not repeat event ids: the
		// pipeline would drop a restarted run's records as duplicates.
		idNonce = uint64(cfg.Now().UnixNano())
	} else {
		if cfg.Start.IsZero() {
			cfg.Start = cfg.Now()
			g.cfg.Start = cfg.Start
		}
		g.startMs = cfg.Start.UnixMilli()
		g.cursor = float64(g.startMs)
		g.stepMs = float64(cfg.Step) / float64(time.Millisecond)
	}
	g.ids = rand.New(rand.NewPCG(mix(cfg.Seed, 0xe7e27, idNonce), mix(cfg.Seed, 0x1d5, idNonce)))
	// P(rank k) is proportional to (50 + k)^-1.1: the most popular lead
	// gets about 0.5% of ordinary traffic with 10,000 leads, 50 times the
	// average, while the long tail sees one or two touches.
	g.zipf = rand.NewZipf(g.rng, 1.1, 50, uint64(cfg.Leads-1))

	hotFrac := fraction(cfg.HotFraction, 0.02)
	nHot := int(math.Round(hotFrac * float64(cfg.Leads)))
	if nHot == 0 && hotFrac > 0 {
		nHot = 1
	}
	if nHot > 0 {
		a, b := affine(uint64(cfg.Leads), mix(cfg.Seed, saltHot, 0))
		g.hot = make([]int32, nHot)
		g.hotBits = make([]uint64, (cfg.Leads+63)/64)
		g.stage = make([]uint8, nHot)
		for k := range g.hot {
			i := permute(uint64(k), a, b, uint64(cfg.Leads))
			g.hot[k] = int32(i)
			g.hotBits[i/64] |= 1 << (i % 64)
		}
		g.hotShare = min(maxHotShare, 10*hotFrac)
	}
	g.counts.BadByReason = make(map[string]int64, len(badReasons))
	return g, nil
}

// Config returns the configuration in force, defaults applied.
func (g *Generator) Config() GenConfig {
	c := g.cfg
	c.Formats = append([]string(nil), c.Formats...)
	return c
}

// HotLeads returns the ids of the hot leads, in no particular order.
func (g *Generator) HotLeads() []string {
	out := make([]string, len(g.hot))
	for k, i := range g.hot {
		out[k] = g.pop.leadID(int(i))
	}
	return out
}

// Counts returns what the generator has made so far.
func (g *Generator) Counts() Counts {
	c := g.counts
	c.BadByReason = make(map[string]int64, len(g.counts.BadByReason))
	for k, v := range g.counts.BadByReason {
		c.BadByReason[k] = v
	}
	return c
}

func (g *Generator) isHot(i int) bool {
	return g.hotBits != nil && g.hotBits[i/64]&(1<<(uint(i)%64)) != 0
}

// Next returns the next record: Key the lead (or anonymous) id, Value the
// touchpoint, Topic set, Timestamp zero (the client stamps it). Bad records
// carry the HeaderExpect header; CloudEvents records a content-type
// header. The record is the caller's; its Key, Value and Headers must not
// be modified, since a later duplicate shares them.
func (g *Generator) Next() *kgo.Record {
	g.counts.Records++
	nowMs := g.advance()
	u := g.rng.Float64()
	if u < g.bad {
		return g.badRecord(nowMs)
	}
	if u < g.bad+g.dup {
		if r := g.duplicate(nowMs); r != nil {
			return r
		}
	}
	return g.goodRecord(nowMs)
}

// advance moves simulated time on by one exponentially distributed step
// (or reads the clock in live mode) and returns the current time in ms.
func (g *Generator) advance() int64 {
	if g.live {
		return g.now().UnixMilli()
	}
	g.cursor += g.rng.ExpFloat64() * g.stepMs
	return int64(g.cursor)
}

// delay returns how long before now a touchpoint of type typ happened, in
// ms: mostly a second or two of collector latency; 5% minutes late; 1%
// hours late; attendance lists of webinars and events are often uploaded
// hours or days after the fact. Never more than 3 days.
func (g *Generator) delay(typ string) int64 {
	const (
		sec  = 1000
		min  = 60 * sec
		hour = 60 * min
	)
	var d float64
	switch u := g.rng.Float64(); {
	case (typ == "webinar_attended" || typ == "event_attended") && u < 0.4:
		d = hour + g.rng.Float64()*47*hour
	case u < 0.94:
		d = g.rng.ExpFloat64() * 1.5 * sec
	case u < 0.99:
		d = min + g.rng.Float64()*59*min
	default:
		d = hour + g.rng.Float64()*71*hour
	}
	return int64(math.Min(d, 72*hour))
}

// eventTime returns the event time for a touchpoint of type typ.
func (g *Generator) eventTime(nowMs int64, typ string) int64 {
	at := nowMs - g.delay(typ)
	if !g.live && at < g.startMs {
		at = g.startMs
	}
	return at
}

// newEventID fills t.eventID with a random (version 4 layout) UUID.
func (g *Generator) newEventID(t *touch) {
	hi, lo := g.ids.Uint64(), g.ids.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12
	lo = lo&^(0x3<<62) | 0x2<<62
	b := t.eventID[:0]
	b = appendHex(b, hi>>32, 8)
	b = append(b, '-')
	b = appendHex(b, hi>>16, 4)
	b = append(b, '-')
	b = appendHex(b, hi, 4)
	b = append(b, '-')
	b = appendHex(b, lo>>48, 4)
	b = append(b, '-')
	_ = appendHex(b, lo, 12)
}

func (g *Generator) pickFormat() format {
	if len(g.formats) == 1 {
		return g.formats[0]
	}
	return g.formats[g.rng.IntN(len(g.formats))]
}

// goodRecord makes a usable touchpoint about a hot lead, an anonymous
// visitor or an ordinary lead.
func (g *Generator) goodRecord(nowMs int64) *kgo.Record {
	t := &g.t
	t.reset()
	switch u := g.rng.Float64(); {
	case u < g.hotShare:
		k := g.rng.IntN(len(g.hot))
		g.hotTouch(t, k)
		g.counts.Hot++
	case u < g.hotShare+anonShare:
		g.anonTouch(t)
		g.counts.Anonymous++
	default:
		i := int(permute(g.zipf.Uint64(), g.pop.leadPermA, g.pop.leadPermB, uint64(g.cfg.Leads)))
		g.coldTouch(t, i)
		if g.isHot(i) {
			g.counts.Hot++
		}
	}
	t.at = g.eventTime(nowMs, t.typ)
	t.form = g.pickTimeForm()
	g.newEventID(t)
	r := g.finish(t, t.key(), g.pickFormat(), nil)
	g.remember(r, t.at)
	return r
}

func (g *Generator) pickTimeForm() timeForm {
	switch u := g.rng.Float64(); {
	case u < 0.2:
		return timeEpochMilli
	case u < 0.25:
		return timeRFC3339Off
	}
	return timeRFC3339
}

var (
	headerCE = kgo.RecordHeader{Key: "content-type", Value: []byte("application/cloudevents+json")}
)

// finish encodes t in format f into a new record with the given key (nil
// for no key) and extra headers.
func (g *Generator) finish(t *touch, key []byte, f format, hdr []kgo.RecordHeader) *kgo.Record {
	g.enc = g.enc[:0]
	switch f {
	case fmtSegment:
		g.enc = encodeSegment(g.enc, t)
	case fmtCloudEvents:
		g.enc = encodeCloudEvents(g.enc, t)
		hdr = append(hdr, headerCE)
	default:
		g.enc = encodeJSON(g.enc, t)
	}
	return g.record(key, g.enc, hdr)
}

// record copies key and value into one new allocation.
func (g *Generator) record(key, value []byte, hdr []kgo.RecordHeader) *kgo.Record {
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	r := &kgo.Record{Topic: g.cfg.Topic, Value: buf[len(key):], Headers: hdr}
	if len(key) > 0 {
		r.Key = buf[:len(key):len(key)]
	}
	return r
}

// remember keeps r as a candidate for re-sending.
func (g *Generator) remember(r *kgo.Record, at int64) {
	if g.dup == 0 {
		return
	}
	g.ring[g.ringPos] = dupEntry{key: r.Key, value: r.Value, headers: r.Headers, at: at}
	g.ringPos = (g.ringPos + 1) % dupRing
	g.ringN = min(g.ringN+1, dupRing)
}

// duplicate re-sends a recent good record, or returns nil when none is
// recent enough (within 12 hours of event time, well inside the 24-hour
// dedupe window).
func (g *Generator) duplicate(nowMs int64) *kgo.Record {
	if g.ringN == 0 {
		return nil
	}
	e := &g.ring[g.rng.IntN(g.ringN)]
	if nowMs-e.at > 12*3600*1000 {
		return nil
	}
	g.counts.Duplicates++
	return &kgo.Record{Topic: g.cfg.Topic, Key: e.key, Value: e.value, Headers: e.headers}
}

// badRecord makes a deliberately unusable record about an ordinary lead.
func (g *Generator) badRecord(nowMs int64) *kgo.Record {
	t := &g.t
	t.reset()
	i := g.rng.IntN(g.cfg.Leads)
	g.coldTouch(t, i)
	t.at = g.eventTime(nowMs, t.typ)
	t.form = g.pickTimeForm()
	g.newEventID(t)
	reason := badReasons[g.rng.IntN(len(badReasons))]
	key := t.key()
	truncate := false
	switch reason {
	case "invalid_json":
		truncate = true
	case "missing_field":
		t.corrupt = corruptNoEventID
	case "bad_time":
		t.corrupt = corruptBadTime
		t.badTime = pick(badTimes, g.rng.Uint64())
	case "wrong_type":
		t.corrupt = corruptWrongType
	case "field_too_long":
		t.corrupt = corruptLongEventID
	case "future":
		t.at += 100 * 365 * 24 * 3600 * 1000
	case "missing_key":
		key = nil
	case "key_mismatch":
		other := (i + 1 + g.rng.IntN(max(g.cfg.Leads-1, 1))) % g.cfg.Leads
		if other == i {
			// A population of one lead: mismatch with a visitor id.
			key = appendAnonID(nil, mix(g.cfg.Seed, saltAnon, uint64(i)))
		} else {
			key = g.pop.appendLeadID(nil, other)
		}
	}
	g.counts.Bad++
	g.counts.BadByReason[reason]++
	hdr := []kgo.RecordHeader{{Key: HeaderExpect, Value: []byte(reason)}}
	if !truncate {
		return g.finish(t, key, g.pickFormat(), hdr)
	}
	r := g.finish(t, key, g.pickFormat(), hdr)
	r.Value = r.Value[:len(r.Value)/2]
	return r
}

var badTimes = []string{
	"yesterday", "2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z",
	"12/03/2026 10:00", "1e30", "2026-03-01 25:61:00",
}
