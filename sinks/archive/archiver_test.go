package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	scoredTopic = "leadscore.scored"
	mqlTopic    = "leadscore.mql"
	dlqTopic    = "leadscore.dlq"
	testGroup   = "archiver-test"
)

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, scoredTopic, mqlTopic, dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// producer produces records to explicit partitions, transactionally when
// txID is set.
func producer(t *testing.T, addrs []string, txID string) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(16 << 20)}
	if txID != "" {
		opts = append(opts, kgo.TransactionalID(txID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceTx produces recs in one transaction, committed or aborted, and
// returns them with their offsets.
func produceTx(t *testing.T, cl *kgo.Client, commit bool, recs ...*kgo.Record) []*kgo.Record {
	t.Helper()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
	return recs
}

func scoredRecord(p int32, id string, at time.Time) *kgo.Record {
	row := TouchpointRow{EventID: id, LeadID: "lead-" + id, Type: "page_view", OccurredAt: at,
		Points: 1, Engagement: 2, ModelName: "m", ModelVersion: "1", SourceTopic: "leadscore.touchpoints"}
	return &kgo.Record{Topic: scoredTopic, Partition: p, Key: []byte(row.LeadID), Value: row.AppendJSON(nil), Timestamp: at}
}

func testConfig(addrs []string, dir string) Config {
	return Config{
		Kafka:        []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.HeartbeatInterval(100 * time.Millisecond)},
		Group:        testGroup,
		Dir:          dir,
		RollRecords:  8,
		RollInterval: 24 * time.Hour,
		FlushIdle:    200 * time.Millisecond,
		Registerer:   prometheus.NewRegistry(),
	}
}

// start runs a in the background; stop cancels it and returns Run's error.
func start(t *testing.T, a *Archiver) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func newArchiver(t *testing.T, cfg Config) *Archiver {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// lastOffsets returns, per partition, the offset after the last of recs.
func lastOffsets(recs []*kgo.Record) map[topicPartition]int64 {
	m := make(map[topicPartition]int64)
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		m[tp] = max(m[tp], r.Offset+1)
	}
	return m
}

func committed(t *testing.T, addrs []string) map[topicPartition]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(context.Background(), testGroup)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[topicPartition]int64{}
	}
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[topicPartition]int64)
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			m[topicPartition{o.Topic, o.Partition}] = o.At
		}
	})
	return m
}

// waitCommitted waits until every partition in want has exactly that
// committed offset.
func waitCommitted(t *testing.T, addrs []string, want map[topicPartition]int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := committed(t, addrs)
		ok := true
		for tp, o := range want {
			if got[tp] != o {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets: got %v want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type archiveContents struct {
	touchpoints []TouchpointRow
	mql         []MQLRow
	deadLetters []DeadLetterRow
	files       []string // relative paths
}

// readArchive reads every visible file, checking that each row sits in
// the dt directory of its event date.
func readArchive(t *testing.T, dir string) archiveContents {
	t.Helper()
	var c archiveContents
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && (path == filepath.Join(dir, LockDir) || path == filepath.Join(dir, SupersededDir)) {
			return fs.SkipDir
		}
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		c.files = append(c.files, rel)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 3 || !strings.HasPrefix(parts[1], "dt=") {
			t.Errorf("unexpected path %s", rel)
			return nil
		}
		if _, _, _, _, ok := parseFileName(parts[2]); !ok {
			t.Errorf("unexpected file name %s", rel)
		}
		dt := strings.TrimPrefix(parts[1], "dt=")
		checkDT := func(at time.Time) {
			if got := at.UTC().Format(time.DateOnly); got != dt {
				t.Errorf("%s: row dated %s", rel, got)
			}
		}
		switch parts[0] {
		case TableTouchpoints:
			for _, r := range readParquet[TouchpointRow](t, path) {
				checkDT(r.OccurredAt)
				c.touchpoints = append(c.touchpoints, r)
			}
		case TableMQL:
			for _, r := range readParquet[MQLRow](t, path) {
				checkDT(r.QualifiedAt)
				c.mql = append(c.mql, r)
			}
		case TableDeadLetters:
			for _, r := range readParquet[DeadLetterRow](t, path) {
				checkDT(r.DeadLetteredAt)
				c.deadLetters = append(c.deadLetters, r)
			}
		default:
			t.Errorf("unexpected table dir %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventIDs returns the touchpoint event ids, failing on duplicates.
func eventIDs(t *testing.T, rows []TouchpointRow) map[string]bool {
	t.Helper()
	ids := make(map[string]bool, len(rows))
	for _, r := range rows {
		if ids[r.EventID] {
			t.Errorf("duplicate row %s", r.EventID)
		}
		ids[r.EventID] = true
	}
	return ids
}

func TestArchiverTransactions(t *testing.T) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "tx-1")
	day1 := time.Date(2026, 5, 1, 23, 0, 0, 0, time.UTC)

	var committedRecs []*kgo.Record
	want := map[string]bool{}
	var recs []*kgo.Record
	for p := range int32(3) {
		for i := range 12 {
			id := fmt.Sprintf("p%d-a%02d", p, i)
			want[id] = true
			// Half the events fall on the next UTC day.
			recs = append(recs, scoredRecord(p, id, day1.Add(time.Duration(i)*10*time.Minute)))
		}
	}
	// Not JSON: archived as a dead letter.
	recs = append(recs, &kgo.Record{Topic: scoredTopic, Partition: 0, Key: []byte("k"), Value: []byte("garbage"), Timestamp: day1,
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{0xff}}}})
	m := sampleMQL(1)
	mv, _ := json.Marshal(m)
	recs = append(recs, &kgo.Record{Topic: mqlTopic, Partition: 1, Key: []byte(m.LeadID), Value: mv})
	recs = append(recs, &kgo.Record{Topic: dlqTopic, Partition: 2, Key: []byte("lead-x"), Value: []byte(`{"event_id":"x"}`),
		Timestamp: day1, Headers: []kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte("too_late")}, {Key: HeaderDetail, Value: []byte("3 days late")},
			{Key: HeaderSourceTopic, Value: []byte("leadscore.touchpoints")},
			{Key: HeaderSourcePartition, Value: []byte("2")}, {Key: HeaderSourceOffset, Value: []byte("41")},
			{Key: "trace", Value: []byte("abc")},
		}})
	committedRecs = append(committedRecs, produceTx(t, prod, true, recs...)...)

	var aborted []*kgo.Record
	for p := range int32(3) {
		for i := range 5 {
			aborted = append(aborted, scoredRecord(p, fmt.Sprintf("p%d-aborted%d", p, i), day1))
		}
	}
	produceTx(t, prod, false, aborted...)

	recs = nil
	for p := range int32(3) {
		for i := range 3 {
			id := fmt.Sprintf("p%d-b%02d", p, i)
			want[id] = true
			recs = append(recs, scoredRecord(p, id, day1.Add(3*time.Hour)))
		}
	}
	committedRecs = append(committedRecs, produceTx(t, prod, true, recs...)...)

	cfg := testConfig(addrs, dir)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	a := newArchiver(t, cfg)
	stop := start(t, a)
	wantOffsets := lastOffsets(committedRecs)
	waitCommitted(t, addrs, wantOffsets)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	got := readArchive(t, dir)
	ids := eventIDs(t, got.touchpoints)
	for id := range want {
		if !ids[id] {
			t.Errorf("missing row %s", id)
		}
	}
	for id := range ids {
		if !want[id] {
			t.Errorf("unexpected row %s (aborted records must not be archived)", id)
		}
	}
	if len(got.mql) != 1 || got.mql[0].MQLID != m.MQLID || len(got.mql[0].Contributors) != 2 {
		t.Errorf("mql rows: %+v", got.mql)
	}
	var sawUndecodable, sawDLQ bool
	for _, d := range got.deadLetters {
		switch d.Reason {
		case ReasonUndecodable:
			sawUndecodable = string(d.Value) == "garbage" && d.SourceTopic == scoredTopic &&
				*d.SourcePartition == 0 && d.Headers == `[{"key":"h","value_base64":"/w=="}]`
		case "too_late":
			sawDLQ = d.Key == "lead-x" && d.Detail == "3 days late" && *d.SourcePartition == 2 &&
				*d.SourceOffset == 41 && d.Headers == `[{"key":"trace","value":"abc"}]`
		}
	}
	if !sawUndecodable || !sawDLQ || len(got.deadLetters) != 2 {
		t.Errorf("dead letters: %+v", got.deadLetters)
	}
	// Every file is named by the offset of a real (committed) record.
	real := map[string]bool{}
	for _, r := range committedRecs {
		real[FileName(r.Topic, r.Partition, r.Offset)] = true
	}
	dts := map[string]bool{}
	for _, f := range got.files {
		if !real[filepath.Base(f)] {
			t.Errorf("file %s not named by a record's offset", f)
		}
		dts[filepath.Base(filepath.Dir(f))] = true
	}
	for _, dt := range []string{"dt=2026-05-01", "dt=2026-05-02"} {
		if !dts[dt] {
			t.Errorf("no %s partition among %v", dt, got.files)
		}
	}
	if n := testutil.ToFloat64(a.m.rowsWritten.WithLabelValues(TableTouchpoints)); int(n) != len(want) {
		t.Errorf("rows_written_total{touchpoints} = %v, want %d", n, len(want))
	}
	if n := testutil.ToFloat64(a.m.undecodable.WithLabelValues(TableTouchpoints)); n != 1 {
		t.Errorf("undecodable_records_total{touchpoints} = %v", n)
	}
	if n := testutil.ToFloat64(a.m.commitErrors); n != 0 {
		t.Errorf("commit_errors_total = %v", n)
	}
}

var errCrash = errors.New("simulated crash")

func TestArchiverCrashBeforeCommit(t *testing.T) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "tx-crash")
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for p := range int32(3) {
		for i := range 20 {
			recs = append(recs, scoredRecord(p, fmt.Sprintf("p%d-%02d", p, i), at.Add(time.Duration(i)*time.Second)))
		}
	}
	produceTx(t, prod, true, recs...)

	// First run: RollRecords 8, so partition 0 closes segments at 8 and 16
	// records; the crash hits after the second one's files are renamed.
	cfg := testConfig(addrs, dir)
	cfg.FlushIdle = time.Hour
	a := newArchiver(t, cfg)
	closes := 0 // only touched by Run's goroutine, under a.mu
	a.beforeCommit = func(topic string, partition int32) error {
		if partition != 0 {
			return nil
		}
		if closes++; closes == 2 {
			return errCrash
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Run(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("Run: %v, want the simulated crash", err)
	}

	before := readArchive(t, dir)
	c := committed(t, addrs)[topicPartition{scoredTopic, 0}]
	var uncommitted []string
	for _, f := range before.files {
		if topic, p, first, _, _ := parseFileName(filepath.Base(f)); topic == scoredTopic && p == 0 && first >= c {
			uncommitted = append(uncommitted, f)
		}
	}
	if len(uncommitted) == 0 {
		t.Fatalf("crash left no file past the committed offset %d: %v", c, before.files)
	}
	// Leftovers of a crash mid-write, and an unrelated file.
	dtDir := filepath.Join(dir, TableTouchpoints, "dt=2026-06-01")
	stale := filepath.Join(dtDir, "."+FileName(scoredTopic, 1, 17)+".tmp")
	other := filepath.Join(dtDir, FileName("other.topic", 0, 1000))
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Restart without the hook.
	cfg.FlushIdle = 200 * time.Millisecond
	cfg.Registerer = prometheus.NewRegistry()
	stop := start(t, newArchiver(t, cfg))
	waitCommitted(t, addrs, lastOffsets(recs))
	if err := stop(); err != nil {
		t.Fatalf("Run after restart: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file not removed: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("file of another topic removed: %v", err)
	}
	_ = os.Remove(other)
	after := readArchive(t, dir)
	ids := eventIDs(t, after.touchpoints)
	if len(ids) != len(recs) || len(after.touchpoints) != len(recs) {
		t.Errorf("after restart: %d rows, %d distinct, want %d", len(after.touchpoints), len(ids), len(recs))
	}
}

func TestArchiverIdleFlush(t *testing.T) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "")
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, scoredRecord(1, fmt.Sprintf("e%d", i), at))
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(addrs, dir)
	cfg.RollRecords = 1000
	stop := start(t, newArchiver(t, cfg))
	// Committed while running: only the idle flush can have closed the
	// segment.
	waitCommitted(t, addrs, lastOffsets(recs))
	got := readArchive(t, dir)
	if len(got.touchpoints) != 5 || len(got.files) != 1 ||
		got.files[0] != filepath.Join(TableTouchpoints, "dt=2026-07-01", FileName(scoredTopic, 1, 0)) {
		t.Errorf("after idle flush: %d rows in %v", len(got.touchpoints), got.files)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestArchiverRevokeFlush(t *testing.T) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "")
	at := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	batch := func(tag string) {
		var b []*kgo.Record
		for p := range int32(3) {
			for i := range 4 {
				b = append(b, scoredRecord(p, fmt.Sprintf("%s-p%d-%d", tag, p, i), at))
			}
		}
		if err := prod.ProduceSync(context.Background(), b...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b...)
	}
	batch("one")

	// Segments only close on revoke or shutdown.
	cfg := testConfig(addrs, dir)
	cfg.RollRecords = 1000
	cfg.FlushIdle = time.Hour
	a := newArchiver(t, cfg)
	stopA := start(t, a)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		n := 0
		for _, s := range a.segs {
			n += s.records
		}
		a.mu.Unlock()
		if n == len(recs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first archiver buffered %d of %d records", n, len(recs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := committed(t, addrs); len(got) != 0 {
		t.Fatalf("committed before any revoke: %v", got)
	}

	cfg.Registerer = prometheus.NewRegistry()
	b := newArchiver(t, cfg)
	stopB := start(t, b)
	// A's revoke callback must flush and commit what moves to B.
	deadline = time.Now().Add(15 * time.Second)
	for len(committed(t, addrs)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing committed after the second archiver joined")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := committed(t, addrs)
	files := readArchive(t, dir).files
	if len(files) == 0 {
		t.Fatalf("committed %v but no files", got)
	}
	batch("two")
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	// B now owns every partition; wait until it has buffered the rest,
	// then its shutdown flushes and commits.
	want := lastOffsets(recs)
	deadline = time.Now().Add(15 * time.Second)
	for {
		have := committed(t, addrs)
		b.mu.Lock()
		for tp, s := range b.segs {
			have[tp] = max(have[tp], s.last+1)
		}
		b.mu.Unlock()
		done := true
		for tp, o := range want {
			done = done && have[tp] == o
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second archiver reached %v, want %v", have, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, addrs, want)
	all := readArchive(t, dir)
	ids := eventIDs(t, all.touchpoints)
	if len(ids) != len(recs) {
		t.Errorf("%d distinct rows, want %d", len(ids), len(recs))
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Kafka: []kgo.Opt{kgo.SeedBrokers("x:9092")}, Dir: "d"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mut := range map[string]func(*Config){
		"Kafka":        func(c *Config) { c.Kafka = nil },
		"Dir":          func(c *Config) { c.Dir = "" },
		"RollRecords":  func(c *Config) { c.RollRecords = -1 },
		"RollBytes":    func(c *Config) { c.RollBytes = -1 },
		"RollInterval": func(c *Config) { c.RollInterval = -1 },
		"FlushIdle":    func(c *Config) { c.FlushIdle = -1 },
		"ScoredTopic":  func(c *Config) { c.ScoredTopic = DefaultMQLTopic },
		"MQLTopic":     func(c *Config) { c.MQLTopic = "x"; c.DLQTopic = "x" },
	} {
		c := ok
		mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "Config."+field+":") {
			t.Errorf("%s: got %v", field, err)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted an invalid config", field)
		}
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.writeSeconds.Observe(0.01)
	m.commitErrors.Inc()
	m.lockWaitSeconds.Add(0.1)
	m.lockWaiting.Set(1)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	for _, c := range []prometheus.Collector{m.filesWritten, m.rowsWritten, m.bytesWritten, m.undecodable, m.writeSeconds, m.commitErrors, m.lockWaitSeconds, m.lockWaiting} {
		if ps, err := testutil.CollectAndLint(c); err != nil || len(ps) > 0 {
			t.Errorf("lint: %v %v", ps, err)
		}
	}
	// A second archiver on the same registry shares the collectors.
	if m2 := newMetrics(reg); m2.commitErrors != m.commitErrors {
		t.Error("second newMetrics did not reuse the registered collectors")
	}
}

// TestDeadLetterFromRepeatedHeaders: a record that already carried
// dead-letter headers (a dead letter produced again after a fix, or a
// producer's own header of that name) keeps them in the headers column;
// the columns take the pipeline's, the last of each name.
func TestDeadLetterFromRepeatedHeaders(t *testing.T) {
	r := &kgo.Record{Key: []byte("lead-1"), Value: []byte("nope"), Headers: []kgo.RecordHeader{
		{Key: HeaderReason, Value: []byte("spoofed")},
		{Key: "trace", Value: []byte("abc")},
		{Key: HeaderSourceOffset, Value: []byte("999")},
		{Key: HeaderReason, Value: []byte("invalid_json")},
		{Key: HeaderDetail, Value: []byte("not JSON")},
		{Key: HeaderSourceTopic, Value: []byte("in")},
		{Key: HeaderSourcePartition, Value: []byte("3")},
		{Key: HeaderSourceOffset, Value: []byte("10")},
		{Key: "leadscore.truncated", Value: []byte("2097152")},
	}}
	d := deadLetterFrom(r)
	if d.Reason != "invalid_json" || d.Detail != "not JSON" || d.SourceTopic != "in" ||
		d.SourcePartition == nil || *d.SourcePartition != 3 || d.SourceOffset == nil || *d.SourceOffset != 10 {
		t.Errorf("columns: %+v", d)
	}
	want := `[{"key":"leadscore.reason","value":"spoofed"},{"key":"trace","value":"abc"},` +
		`{"key":"leadscore.source.offset","value":"999"},{"key":"leadscore.truncated","value":"2097152"}]`
	if d.Headers != want {
		t.Errorf("headers:\n got %s\nwant %s", d.Headers, want)
	}
}

// TestDeadLetterKeyNotUTF8: a key that is not valid UTF-8 goes to
// key_base64, since a string column may hold UTF-8 only.
func TestDeadLetterKeyNotUTF8(t *testing.T) {
	d := deadLetterFrom(&kgo.Record{Key: []byte{0xff, 0xfe, 0xff, 0x00}, Value: []byte("v")})
	if d.Key != "" || d.KeyBase64 != "//7/AA==" {
		t.Errorf("key %q, key_base64 %q; want none and //7/AA==", d.Key, d.KeyBase64)
	}
	d = deadLetterFrom(&kgo.Record{Key: []byte("lead-ü"), Value: []byte("v")})
	if d.Key != "lead-ü" || d.KeyBase64 != "" {
		t.Errorf("key %q, key_base64 %q; want lead-ü and none", d.Key, d.KeyBase64)
	}
}

// TestRecreatedTopicFilesKept is the regression test for archived files
// deleted after their topic was deleted and created again (offsets start
// over, so the old files looked written after the last commit): they are
// moved to SupersededDir/<old topic id>, and the new topic's records are
// archived under the same names.
func TestRecreatedTopicFilesKept(t *testing.T) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "")
	adm := kadm.NewClient(prod)
	ctx := context.Background()
	day := time.Date(2026, 9, 30, 10, 0, 0, 0, time.UTC)
	batch := func(prod *kgo.Client, prefix string) []*kgo.Record {
		var recs []*kgo.Record
		for i := range 24 {
			recs = append(recs, scoredRecord(int32(i%3), fmt.Sprintf("%s%02d", prefix, i), day.Add(time.Duration(i)*time.Minute)))
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	archiveAll := func(recs []*kgo.Record) {
		stop := start(t, newArchiver(t, testConfig(addrs, dir)))
		waitCommitted(t, addrs, lastOffsets(recs))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	archiveAll(batch(prod, "old"))
	before, err := adm.ListTopics(ctx, scoredTopic)
	if err != nil {
		t.Fatal(err)
	}
	oldID := topicIDString(before[scoredTopic].ID)

	if _, err := adm.DeleteTopics(ctx, scoredTopic); err != nil {
		t.Fatal(err)
	}
	waitFor := func(cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("condition not met within 10s")
			}
		}
	}
	waitFor(func() bool {
		_, err := adm.CreateTopic(ctx, 3, 1, nil, scoredTopic)
		return err == nil
	})
	archiveAll(batch(producer(t, addrs, ""), "new")) // a client that never knew the old topic

	got := eventIDs(t, readArchive(t, dir).touchpoints)
	if len(got) != 24 {
		t.Errorf("tables hold %d touchpoints, want the new topic's 24", len(got))
	}
	for id := range got {
		if !strings.HasPrefix(id, "new") {
			t.Errorf("row %s of the deleted topic still in the tables", id)
		}
	}
	aside, err := filepath.Glob(filepath.Join(dir, SupersededDir, oldID, TableTouchpoints, "dt=*", "*.parquet"))
	if err != nil || len(aside) == 0 {
		t.Fatalf("no files of the deleted topic under %s/%s: %v", SupersededDir, oldID, err)
	}
	old := readArchive(t, filepath.Join(dir, SupersededDir, oldID))
	if ids := eventIDs(t, old.touchpoints); len(ids) != 24 {
		t.Errorf("%d touchpoints of the deleted topic kept aside, want 24", len(ids))
	}
}

// TestTopicIDChangeWithOffsetsKeepsFiles: a partition whose topic id
// changed but whose committed offset survived (a topic mirrored to another
// cluster with its offsets translated) was not recreated: its files stay in
// the tables, and the sidecar takes the new id.
func TestTopicIDChangeWithOffsetsKeepsFiles(t *testing.T) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "")
	day := time.Date(2026, 9, 30, 10, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 24 {
		recs = append(recs, scoredRecord(int32(i%3), fmt.Sprintf("e%02d", i), day.Add(time.Duration(i)*time.Minute)))
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run := func() {
		stop := start(t, newArchiver(t, testConfig(addrs, dir)))
		waitCommitted(t, addrs, lastOffsets(recs))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	run()
	sidecar := topicIDPath(dir, topicPartition{scoredTopic, 0})
	id, err := os.ReadFile(sidecar)
	if err != nil || len(strings.TrimSpace(string(id))) != 22 {
		t.Fatalf("sidecar %s: %q, %v; want a topic id", sidecar, id, err)
	}
	if err := os.WriteFile(sidecar, []byte("AAAAAAAAAAAAAAAAAAAAAA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// One more record per partition, so that the second run is seen to
	// take its partitions (and clean them) before it stops.
	more := []*kgo.Record{scoredRecord(0, "f0", day), scoredRecord(1, "f1", day), scoredRecord(2, "f2", day)}
	if err := prod.ProduceSync(context.Background(), more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recs = more
	run()
	if got := eventIDs(t, readArchive(t, dir).touchpoints); len(got) != 27 {
		t.Errorf("tables hold %d touchpoints, want all 27", len(got))
	}
	if _, err := os.Stat(filepath.Join(dir, SupersededDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (%v): nothing was recreated", SupersededDir, err)
	}
	if now, _ := os.ReadFile(sidecar); string(now) != string(id) {
		t.Errorf("sidecar %q after the run, want the topic's id %q", now, id)
	}
}
