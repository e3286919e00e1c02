package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/invariants"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sinks/archive"
	"github.com/leadscore/leadscore/sinks/mqlout"
)

// Dead-letter headers. The record's key, value and own headers are kept
// unchanged; these are appended.
const (
	HeaderReason          = "leadscore.reason"
	HeaderDetail          = "leadscore.detail"
	HeaderSourceTopic     = "leadscore.source.topic"
	HeaderSourcePartition = "leadscore.source.partition"
	HeaderSourceOffset    = "leadscore.source.offset"
	// HeaderTruncated is set, to the original value's size, on a dead
	// letter whose value had to be cut to fit the topic's size limit.
	HeaderTruncated = "leadscore.truncated"
	// HeaderHeadersDropped is set, to the number of the record's own
	// headers left out (the last ones), on a dead letter whose headers
	// and key did not fit the topic's size limit.
	HeaderHeadersDropped = "leadscore.headers_dropped"
	// HeaderKeyTruncated is set, to the original key's size, on a dead
	// letter whose key alone did not fit the topic's size limit.
	HeaderKeyTruncated = "leadscore.key_truncated"
)

// maxDetailBytes bounds the leadscore.detail header (and "..." after it
// when cut).
const maxDetailBytes = 1024

// maxRecordBytes bounds one produced record batch. Dead letters carry the
// input value unchanged, so this is above any value the input topic takes
// by default (1 MiB) plus headers.
const maxRecordBytes = 16 << 20

type batch struct {
	records []*kgo.Record
	now     time.Time
	done    *sync.WaitGroup
}

// worker owns one partition: its engine and decoder are touched by its
// goroutine only, while a batch is in flight; the pipeline's loop touches
// them between batches (changelog, commit, rollback), never concurrently.
type worker struct {
	p         *Pipeline
	partition int32
	eng       *scorer.Engine
	decs      [2][scorer.PrefetchBatch]*Decoder // two groups: see score
	work      chan batch
	quit      chan struct{}
	exited    chan struct{}

	tps  [2][scorer.PrefetchBatch]scorer.Touchpoint // of the two groups being handled
	errs [2][scorer.PrefetchBatch]error
	pf   scorer.Prefetcher
	tp   *scorer.Touchpoint // the one being handled
	res  scorer.Result
	row  archive.TouchpointRow

	slab    []byte
	records []kgo.Record

	// counts since the last transaction ended; added to the metrics only
	// when it commits, so that the metrics count each touchpoint once.
	c counts
}

type counts struct {
	consumed, scored, duplicates, mqls int
	deadLetters                        map[Reason]int
	latency                            []float64
}

func newWorker(p *Pipeline, part int32, eng *scorer.Engine) (*worker, error) {
	w := &worker{
		p:         p,
		partition: part,
		eng:       eng,
		work:      make(chan batch),
		quit:      make(chan struct{}),
		exited:    make(chan struct{}),
		c:         counts{deadLetters: make(map[Reason]int)},
	}
	for g := range w.decs {
		for i := range w.decs[g] {
			dec, err := NewDecoder(p.cfg.Decoder)
			if err != nil {
				return nil, err
			}
			w.decs[g][i] = dec
		}
	}
	w.row.ModelName = p.cfg.Model.Name
	w.row.ModelVersion = p.cfg.Model.Version
	w.row.SourceTopic = p.cfg.Topics.Touchpoints
	w.row.SourcePartition = part
	go w.run()
	return w, nil
}

func (w *worker) run() {
	defer close(w.exited)
	for {
		select {
		case b := <-w.work:
			w.score(b.records, b.now)
			b.done.Done()
		case <-w.quit:
			return
		}
	}
}

// stop ends the worker's goroutine and waits for it. Never called while a
// batch is in flight.
func (w *worker) stop() {
	close(w.quit)
	<-w.exited
}

// score decodes, scores and handles recs, scorer.PrefetchBatch records
// (a group) at a time, in a software pipeline: while a group is decoded,
// the engine prefetches the memory of the previous group's leads, one level
// of their pointer chains per record decoded (scorer.Prefetcher), and that
// group is scored next. The decoding hides the memory latency that the
// scoring would otherwise wait on. Groups alternate between two sets of
// decoders, because a touchpoint's strings live in its decoder's buffer
// until that decoder's next Decode.
func (w *worker) score(recs []*kgo.Record, now time.Time) {
	var prev []*kgo.Record
	g := 0
	for {
		n := min(len(recs), scorer.PrefetchBatch)
		for i, r := range recs[:n] {
			w.errs[g][i] = w.decs[g][i].Decode(r.Key, r.Value, r.Headers, &w.tps[g][i])
			if w.errs[g][i] != nil {
				w.tps[g][i] = scorer.Touchpoint{}
			}
			w.pf.Step()
		}
		w.pf.Finish()
		for i, r := range prev {
			w.handle(r, 1-g, i, now)
		}
		if n == 0 {
			return
		}
		w.pf.Start(w.eng, w.tps[g][:n])
		prev, recs, g = recs[:n], recs[n:], 1-g
	}
}

// handle scores the i-th record of group g and produces its outputs.
func (w *worker) handle(r *kgo.Record, g, i int, now time.Time) {
	w.c.consumed++
	if err := w.errs[g][i]; err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			de = &DecodeError{Reason: ReasonInvalidJSON, Detail: err.Error()}
		}
		w.deadLetter(r, de.Reason, de.Error())
		return
	}
	w.tp = &w.tps[g][i]
	w.eng.Apply(w.tp, now.UnixMilli(), &w.res)
	switch w.res.Outcome {
	case scorer.Duplicate:
		w.c.duplicates++
		return
	case scorer.TooLate:
		w.deadLetter(r, ReasonTooLate, "ingest: too_late: occurred_at "+
			time.UnixMilli(w.tp.OccurredAt).UTC().Format(time.RFC3339Nano)+
			" is more than max_lateness before the lead's latest event")
		return
	case scorer.Future:
		w.deadLetter(r, ReasonFuture, "ingest: future: occurred_at "+
			time.UnixMilli(w.tp.OccurredAt).UTC().Format(time.RFC3339Nano)+
			" is more than max_future_skew after the wall clock "+now.UTC().Format(time.RFC3339Nano))
		return
	}
	if invariants.Enabled && (math.IsNaN(w.res.Engagement) || math.IsInf(w.res.Engagement, 0) || w.res.RefTime < w.tp.OccurredAt) {
		panic(fmt.Sprintf("ingest: engagement %v after event %q", w.res.Engagement, w.tp.EventID))
	}
	w.c.scored++
	if !r.Timestamp.IsZero() {
		if len(w.c.latency) < 64 {
			w.c.latency = append(w.c.latency, max(now.Sub(r.Timestamp).Seconds(), 0)) // a producer's clock may be ahead
		}
	}

	row := &w.row
	row.EventID = w.tp.EventID
	row.LeadID = w.tp.Lead()
	row.AnonymousID = w.tp.AnonymousID
	row.AccountID = w.tp.AccountID
	row.Type = w.tp.Type
	row.Channel = w.tp.Channel
	row.Campaign = w.tp.Campaign
	row.OccurredAt = time.UnixMilli(w.tp.OccurredAt).UTC()
	row.Properties = bytesString(w.tp.RawProperties)
	row.Traits = bytesString(w.tp.RawTraits)
	row.Rule = w.res.Rule
	row.Points = w.res.Points
	row.Engagement = w.res.Engagement
	row.Fit = w.res.Fit
	row.TriggeredMQL = w.res.Qualified
	row.MQLID = ""
	row.SourceOffset = r.Offset
	if w.res.Qualified {
		row.MQLID = w.res.MQL.MQLID
		w.emitMQL(now)
	}
	if len(row.Properties)+len(row.Traits) > w.p.maxRecord/2 {
		// Keep the row writable: the archive gets the scoring result
		// without the oversized raw objects (the input topic has them).
		row.Properties, row.Traits = "", ""
	}
	start := len(w.slab)
	w.slab = row.AppendJSON(w.slab)
	value := w.slab[start:len(w.slab):len(w.slab)]
	w.produce(w.p.cfg.Topics.Scored, w.partition, []byte(row.LeadID), value, nil)
	w.reserve()
}

func (w *worker) emitMQL(now time.Time) {
	w.res.MQL.EmittedAt = now.UTC()
	r, err := mqlout.Record(w.p.cfg.Topics.MQL, &w.res.MQL)
	if err != nil {
		// Only NaN or Inf scores could fail to encode; the model loader
		// takes finite points within models.MaxPoints only, which no
		// number of touchpoints adds up to Inf, so this is a bug. Fail
		// the transaction rather than lose the MQL.
		w.p.produceErr.CompareAndSwap(nil, &err)
		return
	}
	w.c.mqls++
	w.p.sess.Produce(context.Background(), r, w.p.promise)
}

func (w *worker) deadLetter(r *kgo.Record, reason Reason, detail string) {
	w.c.deadLetters[reason]++
	if len(detail) > maxDetailBytes {
		detail = strings.ToValidUTF8(detail[:maxDetailBytes], "") + "..."
	}
	ours := [...]kgo.RecordHeader{
		{Key: HeaderReason, Value: []byte(reason)},
		{Key: HeaderDetail, Value: []byte(detail)},
		{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
	}
	key, value, own := r.Key, r.Value, r.Headers
	var cut []kgo.RecordHeader
	if len(key)+len(value)+headersSize(own)+headersSize(ours[:]) > w.p.maxRecord {
		// A dead letter that cannot be written would abort every
		// transaction after it, and again after every restart. Keep our
		// headers whole and cut the rest to fit: the record's own headers
		// when they and the key are too large (the last ones first), then
		// the key when it alone is, then the value to what is left; a
		// value up to half the room is kept whole, cutting the key
		// shorter instead. Each cut is said in a header giving the
		// original size or count; the input topic still has the record
		// whole until its retention ends.
		budget := max(w.p.maxRecord-headersSize(ours[:])-1024, 0) // 1 KiB for the cut headers and the record's framing
		keyRoom := budget - min(len(value), budget/2)
		// Drop from the end in one pass: a hostile record may carry
		// hundreds of thousands of headers.
		for size := len(key) + headersSize(own); len(own) > 0 && size > keyRoom; {
			size -= headersSize(own[len(own)-1:])
			own = own[:len(own)-1]
		}
		if n := len(r.Headers) - len(own); n > 0 {
			cut = append(cut, kgo.RecordHeader{Key: HeaderHeadersDropped, Value: strconv.AppendInt(nil, int64(n), 10)})
		}
		if len(key) > keyRoom {
			key = key[:keyRoom]
			cut = append(cut, kgo.RecordHeader{Key: HeaderKeyTruncated, Value: strconv.AppendInt(nil, int64(len(r.Key)), 10)})
		}
		value = value[:min(max(budget-len(key)-headersSize(own), 0), len(value))]
		if len(value) < len(r.Value) {
			cut = append(cut, kgo.RecordHeader{Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(r.Value)), 10)})
		}
	}
	headers := make([]kgo.RecordHeader, 0, len(own)+len(ours)+len(cut))
	headers = append(headers, own...)
	headers = append(headers, ours[:]...)
	headers = append(headers, cut...)
	w.produce(w.p.cfg.Topics.DLQ, -1, key, value, headers)
}

func headersSize(hs []kgo.RecordHeader) int {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// produce sends one record in the open transaction. partition < 0 lets the
// key choose it.
func (w *worker) produce(topic string, partition int32, key, value []byte, headers []kgo.RecordHeader) {
	if len(w.records) == 0 {
		w.records = make([]kgo.Record, 256)
	}
	r := &w.records[0]
	w.records = w.records[1:]
	r.Topic = topic
	r.Partition = max(partition, 0)
	r.Key = key
	r.Value = value
	r.Headers = headers
	w.p.sess.Produce(context.Background(), r, w.p.promise)
}

// reserve keeps room in the slab the scored rows are encoded into; rows
// stay referenced by their records until produced, so a full slab is
// replaced, never reused.
func (w *worker) reserve() {
	const slabSize = 1 << 20
	if cap(w.slab)-len(w.slab) < 16<<10 {
		w.slab = make([]byte, 0, slabSize)
	}
}

func (w *worker) flushMetrics(m *metrics) {
	m.consumed.Add(float64(w.c.consumed))
	m.scored.Add(float64(w.c.scored))
	m.duplicates.Add(float64(w.c.duplicates))
	m.mqls.Add(float64(w.c.mqls))
	for reason, n := range w.c.deadLetters {
		if n > 0 {
			m.deadLetters.WithLabelValues(string(reason)).Add(float64(n))
		}
	}
	for _, l := range w.c.latency {
		m.latency.Observe(l)
	}
	w.dropMetrics()
}

func (w *worker) dropMetrics() {
	w.c.consumed, w.c.scored, w.c.duplicates, w.c.mqls = 0, 0, 0, 0
	clear(w.c.deadLetters)
	w.c.latency = w.c.latency[:0]
}

// bytesString views b as a string without copying. The row it goes into
// is encoded before b's buffer is reused.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func partLabel(i int32) string { return strconv.FormatInt(int64(i), 10) }
