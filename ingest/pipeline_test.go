package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sinks/archive"
)

const testModelYAML = `
name: pipeline-test
version: "7"
half_life: 1d
max_lateness: 7d
max_future_skew: 5m
dedupe_window: 24h
thresholds: {mql: 100, rearm: 50}
rules:
  - {name: view, type: page_view, points: 10}
  - {name: pricing, type: page_view, properties: {url: "*/pricing*"}, points: 30}
  - {name: demo, type: demo_request, points: 60}
`

func testModel(t testing.TB) *models.Model {
	t.Helper()
	m, err := models.Parse("pipeline-test.yaml", []byte(testModelYAML))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// env is one pipeline test's cluster and topics.
type env struct {
	t       *testing.T
	cluster *kafkatest.Cluster
	topics  Topics
	group   string
	cl      *kgo.Client
}

func newEnv(t *testing.T, c *kafkatest.Cluster, partitions int32) *env {
	return newEnvScored(t, c, partitions, nil)
}

// newEnvScored is newEnv with the scored topic created beforehand with
// scoredConfigs, when not nil.
func newEnvScored(t *testing.T, c *kafkatest.Cluster, partitions int32, scoredConfigs map[string]*string) *env {
	t.Helper()
	e := &env{t: t, cluster: c, group: c.Group(t)}
	base := c.Topic(t, partitions, nil)
	e.topics = Topics{Touchpoints: base}
	// The other topics are created by EnsureTopics, the way the binary does.
	e.topics.MQL, e.topics.DLQ, e.topics.State, e.topics.Scored = base+".mql", base+".dlq", base+".state", base+".scored"
	if scoredConfigs != nil {
		e.topics.Scored = c.Topic(t, partitions, scoredConfigs)
	}
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, adm, e.topics, TopicPlan{Create: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, e.topics.MQL, e.topics.DLQ, e.topics.State, e.topics.Scored)
	})
	cl, err := kgo.NewClient(append(c.Opts(), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.cl = cl
	return e
}

type running struct {
	p      *Pipeline
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(txnID string, reg prometheus.Registerer) *running {
	e.t.Helper()
	p, err := New(Config{
		Kafka:           e.cluster.Opts(),
		Group:           e.group,
		TransactionalID: e.group + "-" + txnID,
		Topics:          e.topics,
		Model:           testModel(e.t),
		CommitInterval:  50 * time.Millisecond,
		Registerer:      reg,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("pipeline Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("pipeline did not stop within 60s")
	}
}

func (e *env) produce(recs ...*kgo.Record) {
	e.t.Helper()
	for _, r := range recs {
		if r.Topic == "" {
			r.Topic = e.topics.Touchpoints
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// readAll reads topic read_committed from the start until want records are
// seen, then keeps reading for settle to catch any extra (duplicated)
// record.
func (e *env) readAll(topic string, want int, settle time.Duration) []*kgo.Record {
	e.t.Helper()
	cl, err := kgo.NewClient(append(e.cluster.Opts(),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	var settleAt time.Time
	for {
		now := time.Now()
		if len(out) >= want && settleAt.IsZero() {
			settleAt = now.Add(settle)
		}
		if (!settleAt.IsZero() && now.After(settleAt)) || now.After(deadline) {
			break
		}
		end := deadline
		if !settleAt.IsZero() {
			end = settleAt
		}
		ctx, cancel := context.WithDeadline(context.Background(), end)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				e.t.Errorf("consume %s: %v", topic, err)
			}
		})
		out = append(out, fs.Records()...)
	}
	if len(out) < want {
		e.t.Fatalf("topic %s: %d records within 60s, want %d", topic, len(out), want)
	}
	return out
}

func tpRecord(lead, eventID, typ string, at time.Time, props map[string]string) *kgo.Record {
	v := map[string]any{"event_id": eventID, "lead_id": lead, "type": typ, "occurred_at": at.UTC().Format(time.RFC3339Nano)}
	if props != nil {
		v["properties"] = props
	}
	b, _ := json.Marshal(v)
	return &kgo.Record{Key: []byte(lead), Value: b}
}

// exactScore is SCORING.md 3 by its definition: the sum of every applied
// touchpoint's points decayed to t, independent of the engine's
// incremental form.
func exactScore(halfLife time.Duration, t time.Time, pts []float64, at []time.Time) float64 {
	var s float64
	for i := range pts {
		s += pts[i] * math.Exp2(-t.Sub(at[i]).Hours()/halfLife.Hours())
	}
	return s
}

func relClose(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// testPipelineEndToEnd is the end-to-end flow on any cluster: touchpoints
// in; MQL events, dead letters and scored touchpoints out, read
// read_committed; then a restart that must resume from the changelog.
func testPipelineEndToEnd(t *testing.T, c *kafkatest.Cluster) {
	e := newEnv(t, c, 3)
	reg := prometheus.NewRegistry()
	run := e.start("a", reg)

	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	alice := []*kgo.Record{
		tpRecord("alice", "a1", "page_view", h(0), map[string]string{"url": "https://x.test/pricing"}),
		tpRecord("alice", "a2", "demo_request", h(1), nil),
		tpRecord("alice", "a3", "page_view", h(2), map[string]string{"url": "https://x.test/blog"}),
		tpRecord("alice", "a4", "demo_request", h(3), nil),
	}
	bobFromTheFuture := tpRecord("bob", "b1", "page_view", h(0), nil)
	bobFromTheFuture.Timestamp = time.Now().Add(30 * time.Minute) // a producer's clock ahead (Kafka takes up to 1 h by default)
	bob := []*kgo.Record{
		bobFromTheFuture,
		tpRecord("bob", "b2", "page_view", h(1), nil),
		tpRecord("bob", "b2", "page_view", h(1), nil),        // duplicate event_id
		tpRecord("bob", "b3", "webinar_attended", h(2), nil), // no rule: 0 points, still scored
	}
	bad := []*kgo.Record{
		{Key: []byte("carol"), Value: []byte(`{"event_id": "c1", "lead_id": "carol", "type":`)},
		tpRecord("dave", "d1", "page_view", time.Now().Add(time.Hour), nil),
	}
	e.produce(append(append(alice, bob...), bad...)...)

	// One MQL: alice's fourth touchpoint crosses 100.
	mqls := e.readAll(e.topics.MQL, 1, 2*time.Second)
	if len(mqls) != 1 {
		t.Fatalf("MQL events: %d, want exactly 1", len(mqls))
	}
	var mql scorer.MQL
	if err := json.Unmarshal(mqls[0].Value, &mql); err != nil {
		t.Fatal(err)
	}
	want := exactScore(24*time.Hour, h(3), []float64{30, 60, 10, 60}, []time.Time{h(0), h(1), h(2), h(3)})
	if mql.LeadID != "alice" || mql.Sequence != 1 || mql.TriggerEventID != "a4" || !relClose(mql.Score, want) ||
		!mql.QualifiedAt.Equal(h(3)) || string(mqls[0].Key) != "alice" || mql.Model.Version != "7" {
		t.Errorf("MQL = %+v (key %q), want alice seq 1 trigger a4 score %.12g at %v", mql, mqls[0].Key, want, h(3))
	}

	dlq := e.readAll(e.topics.DLQ, 2, time.Second)
	reasons := map[string]string{}
	for _, r := range dlq {
		reasons[string(r.Key)] = header(r, HeaderReason)
		if header(r, HeaderSourceTopic) != e.topics.Touchpoints || header(r, HeaderSourceOffset) == "" {
			t.Errorf("dead letter %q lacks source headers: %v", r.Key, r.Headers)
		}
	}
	if len(dlq) != 2 || reasons["carol"] != string(ReasonInvalidJSON) || reasons["dave"] != string(ReasonFuture) {
		t.Errorf("dead letters = %v, want carol invalid_json and dave future", reasons)
	}
	for _, r := range dlq {
		if string(r.Key) == "carol" && !strings.HasSuffix(string(r.Value), `"type":`) {
			t.Errorf("dead letter value changed: %q", r.Value)
		}
	}

	scored := e.readAll(e.topics.Scored, 7, time.Second)
	if len(scored) != 7 {
		t.Errorf("scored touchpoints: %d, want 7 (4 alice, 3 bob; the duplicate is not scored)", len(scored))
	}
	var row archive.TouchpointRow
	for _, r := range scored {
		if err := row.UnmarshalJSON(r.Value); err != nil {
			t.Fatal(err)
		}
		if row.EventID == "b3" && (row.Points != 0 || row.Rule != "") {
			t.Errorf("b3 (no rule) scored %v by %q, want 0 points", row.Points, row.Rule)
		}
		if row.EventID == "a4" && (!row.TriggeredMQL || row.MQLID != mql.MQLID) {
			t.Errorf("a4 row: triggered %v id %q, want the MQL %s", row.TriggeredMQL, row.MQLID, mql.MQLID)
		}
	}

	// Metrics move once the transaction commits.
	waitFor(t, func() bool { return testutil.ToFloat64(run.p.m.consumed) == 10 })
	if got := testutil.ToFloat64(run.p.m.duplicates); got != 1 {
		t.Errorf("duplicates metric = %v, want 1", got)
	}
	if got := testutil.ToFloat64(run.p.m.deadLetters.WithLabelValues("future")); got != 1 {
		t.Errorf("dead-lettered{future} = %v, want 1", got)
	}
	var lat dto.Metric
	if err := run.p.m.latency.Write(&lat); err != nil {
		t.Fatal(err)
	}
	if h := lat.GetHistogram(); h.GetSampleCount() == 0 || h.GetSampleSum() < 0 || h.GetSampleSum() > 3600*float64(h.GetSampleCount()) {
		t.Errorf("processing latency: %d samples, sum %v s: want a sample per record, none negative", h.GetSampleCount(), h.GetSampleSum())
	}

	// Restart: the new instance restores alice from the changelog; her next
	// touchpoint's engagement must include all four earlier ones, and she
	// stays disarmed (engagement above rearm): no second MQL.
	// The leads gauge counts the leads held (alice, bob), and a restart's
	// restored leads before any new record.
	waitFor(t, func() bool { return run.p.leads.Load() == 2 })
	run.stop(t)
	run = e.start("b", nil)
	waitFor(t, func() bool { return run.p.leads.Load() == 2 })
	e.produce(tpRecord("alice", "a5", "page_view", h(4), nil))
	scored = e.readAll(e.topics.Scored, 8, time.Second)
	var a5 *archive.TouchpointRow
	for _, r := range scored {
		var row archive.TouchpointRow
		if err := row.UnmarshalJSON(r.Value); err != nil {
			t.Fatal(err)
		}
		if row.EventID == "a5" {
			a5 = &row
		}
	}
	if a5 == nil {
		t.Fatal("a5 not scored after restart")
	}
	want = exactScore(24*time.Hour, h(4), []float64{30, 60, 10, 60, 10}, []time.Time{h(0), h(1), h(2), h(3), h(4)})
	if !relClose(a5.Engagement, want) {
		t.Errorf("after restart a5 engagement = %.12g, want %.12g (state not restored?)", a5.Engagement, want)
	}
	if got := e.readAll(e.topics.MQL, 1, 2*time.Second); len(got) != 1 {
		t.Errorf("MQL events after restart: %d, want still 1", len(got))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPipelineEndToEndFake(t *testing.T) {
	testPipelineEndToEnd(t, kafkatest.Fake(t))
}

func TestPipelineEndToEndKafka(t *testing.T) {
	testPipelineEndToEnd(t, kafkatest.Broker(t))
}

// testTwoInstances checks that two instances in one group split the
// partitions and together produce exactly the MQL events one instance
// produces alone.
func testTwoInstances(t *testing.T, c *kafkatest.Cluster) {
	const leads, perLead = 40, 6
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	records := func() (recs []*kgo.Record) {
		for i := range perLead {
			for l := range leads {
				typ := "page_view"
				if i%2 == 1 {
					typ = "demo_request"
				}
				recs = append(recs, tpRecord(fmt.Sprintf("lead-%02d", l), fmt.Sprintf("e-%02d-%d", l, i), typ, t0.Add(time.Duration(i)*time.Minute), nil))
			}
		}
		return recs
	}
	collect := func(instances int) map[string]string {
		e := newEnv(t, c, 4)
		var runs []*running
		for i := range instances {
			runs = append(runs, e.start(fmt.Sprint(i), nil))
		}
		e.produce(records()...)
		// Every lead: 10+60 -> 70, +10 -> ~80, +60 -> ~140: qualifies on its
		// fourth touchpoint; later ones stay above rearm.
		got := map[string]string{}
		for _, r := range e.readAll(e.topics.MQL, leads, 2*time.Second) {
			var m scorer.MQL
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%s/%d", m.LeadID, m.Sequence)
			if _, dup := got[key]; dup {
				t.Errorf("duplicate MQL %s", key)
			}
			got[key] = fmt.Sprintf("%s %s %.12g", m.MQLID, m.TriggerEventID, m.Score)
		}
		// The instances split the partitions between them.
		total := 0
		for i, r := range runs {
			r.p.mu.Lock()
			n := len(r.p.workers)
			r.p.mu.Unlock()
			if n == 0 {
				t.Errorf("instance %d of %d owns no partition", i, instances)
			}
			total += n
		}
		if total != 4 {
			t.Errorf("instances own %d partitions in all, want 4", total)
		}
		return got
	}
	one, two := collect(1), collect(2)
	if len(one) != leads {
		t.Errorf("one instance: %d MQLs, want %d", len(one), leads)
	}
	for k, v := range one {
		if two[k] != v {
			t.Errorf("MQL %s: one instance %q, two instances %q", k, v, two[k])
		}
	}
	if len(two) != len(one) {
		t.Errorf("two instances: %d MQLs, one instance: %d", len(two), len(one))
	}
}

func TestTwoInstancesFake(t *testing.T)  { testTwoInstances(t, kafkatest.Fake(t)) }
func TestTwoInstancesKafka(t *testing.T) { testTwoInstances(t, kafkatest.Broker(t)) }

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := New(Config{Kafka: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, Model: testModel(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = p
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("metric %s: %s", pr.Metric, pr.Text)
	}
}

func TestEnsureTopicsMismatch(t *testing.T) {
	c := kafkatest.Fake(t)
	adm := c.Admin(t)
	in := c.Topic(t, 4, nil)
	state := c.Topic(t, 2, nil)
	err := EnsureTopics(context.Background(), adm, Topics{Touchpoints: in, State: state,
		MQL: in + ".m", DLQ: in + ".d", Scored: in + ".s"}, TopicPlan{Create: true})
	if err == nil || !strings.Contains(err.Error(), "same number") {
		t.Errorf("EnsureTopics with a 2-partition state topic for a 4-partition input: %v, want a partition-count error", err)
	}
	err = EnsureTopics(context.Background(), adm, Topics{Touchpoints: in + ".missing"}, TopicPlan{Create: false})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("EnsureTopics without Create on a missing topic: %v", err)
	}
}

// testSmallTopicLimit is the regression test for a lost batch: an output
// topic whose max.message.bytes is smaller than the producer's batches
// refused whole batches of scored touchpoints for good, and the transaction
// committed without them. The producer now sizes its batches to the
// smallest limit of its output topics, and a transaction with any failed
// record aborts.
func testSmallTopicLimit(t *testing.T, c *kafkatest.Cluster) {
	limit := "16384"
	e := newEnvScored(t, c, 2, map[string]*string{"max.message.bytes": &limit})
	const n = 3000
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		recs = append(recs, tpRecord(fmt.Sprintf("lead-%03d", i%300), fmt.Sprintf("ev-%d", i), "page_view",
			t0.Add(time.Duration(i)*time.Millisecond), map[string]string{"url": "https://x.test/blog/" + strings.Repeat("a", 100)}))
	}
	// And a dead letter larger than any batch the topics take: it is
	// written cut, with its original size in a header, instead of
	// aborting every transaction after it.
	big := &kgo.Record{Key: []byte("lead-big"), Value: []byte("{" + strings.Repeat("x", 40000))}
	// The same for a key, or headers, that alone are over the limit: the
	// record's headers go first, then the key; a small value is kept.
	bigKey := &kgo.Record{Key: []byte(strings.Repeat("K", 20000)), Value: []byte("x")}
	bigHeaders := &kgo.Record{Key: []byte("lead-h"), Value: []byte("nope"), Headers: []kgo.RecordHeader{
		{Key: "small", Value: []byte("kept")}, {Key: "huge", Value: bytes.Repeat([]byte("h"), 20000)}}}
	e.produce(append(recs, big, bigKey, bigHeaders)...)
	e.start("a", nil)
	dl := e.readAll(e.topics.DLQ, 3, time.Second)
	if len(dl) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dl))
	}
	for _, r := range dl {
		size := len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			size += len(h.Key) + len(h.Value)
		}
		if size >= 16384 {
			t.Errorf("dead letter of key %.20q: %d bytes, over the topic's limit", r.Key, size)
		}
		switch {
		case string(r.Key) == "lead-big":
			if header(r, HeaderTruncated) != "40001" || header(r, HeaderReason) != string(ReasonInvalidJSON) ||
				!bytes.HasPrefix(big.Value, r.Value) || len(r.Value) < 8000 {
				t.Errorf("oversized value: truncated=%q, value %d bytes", header(r, HeaderTruncated), len(r.Value))
			}
		case string(r.Key) == "lead-h":
			if header(r, HeaderHeadersDropped) != "1" || header(r, "small") != "kept" || header(r, "huge") != "" ||
				string(r.Value) != "nope" || header(r, HeaderReason) != string(ReasonInvalidJSON) {
				t.Errorf("oversized headers: %d headers, dropped=%q, value %q", len(r.Headers), header(r, HeaderHeadersDropped), r.Value)
			}
		default:
			if header(r, HeaderKeyTruncated) != "20000" || header(r, HeaderTruncated) != "" || string(r.Value) != "x" ||
				!bytes.HasPrefix(bigKey.Key, r.Key) || len(r.Key) < 8000 || header(r, HeaderReason) == "" {
				t.Errorf("oversized key: key %d bytes, key_truncated=%q, truncated=%q, reason %q",
					len(r.Key), header(r, HeaderKeyTruncated), header(r, HeaderTruncated), header(r, HeaderReason))
			}
		}
	}
	got := e.readAll(e.topics.Scored, n, 2*time.Second)
	seen := map[string]int{}
	var row archive.TouchpointRow
	for _, r := range got {
		if err := row.UnmarshalJSON(r.Value); err != nil {
			t.Fatal(err)
		}
		seen[row.EventID]++
	}
	if len(got) != n || len(seen) != n {
		t.Errorf("scored records: %d (%d distinct), want %d: batches over the topic limit were lost or doubled", len(got), len(seen), n)
	}
}

func TestSmallTopicLimitFake(t *testing.T)  { testSmallTopicLimit(t, kafkatest.Fake(t)) }
func TestSmallTopicLimitKafka(t *testing.T) { testSmallTopicLimit(t, kafkatest.Broker(t)) }
