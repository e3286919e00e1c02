package synth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeProducer acknowledges asynchronously, failing the records fail picks.
type fakeProducer struct {
	mu   sync.Mutex
	n    int
	fail func(n int) error
}

func (f *fakeProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	var err error
	if f.fail != nil {
		err = f.fail(n)
	}
	go promise(r, err)
}

func TestProduceKfake(t *testing.T) {
	const topic = "leadscore.touchpoints"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	g := newGen(t, GenConfig{Leads: 300, Step: time.Second, Start: testStart,
		Formats: []string{"json", "segment", "cloudevents"}})
	sent := map[string]int{}
	src := func() (*kgo.Record, error) {
		r := g.Next()
		sent[string(r.Key)+"\x00"+string(r.Value)]++
		return r, nil
	}
	reg := prometheus.NewPedanticRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 3000
	st, err := Produce(ctx, cl, src, ProduceConfig{Count: n, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != n || st.Produced != n || st.Failed != 0 || st.Canceled != 0 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := counterValue(t, reg, "leadscore_synth_records_produced_total"); got != n {
		t.Errorf("produced counter %v", got)
	}

	// A second run with the same Registerer shares the counters.
	st2, err := Produce(ctx, cl, ReplayJSONL(strings.NewReader(`{"lead_id":"lead-x","event_id":"x"}`), topic),
		ProduceConfig{Registerer: reg})
	if err != nil || st2.Produced != 1 {
		t.Fatalf("replay: %+v %v", st2, err)
	}
	sent[`lead-x`+"\x00"+`{"lead_id":"lead-x","event_id":"x"}`]++
	if got := counterValue(t, reg, "leadscore_synth_records_produced_total"); got != n+1 {
		t.Errorf("produced counter %v after the second run", got)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	partitions := map[int32]bool{}
	for got < n+1 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d records: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key) + "\x00" + string(r.Value)
			if sent[k] == 0 {
				t.Fatalf("consumed a record not sent, or too often: %s", k)
			}
			sent[k]--
			partitions[r.Partition] = true
			got++
		})
	}
	if len(partitions) != 3 {
		t.Errorf("records landed in %d partitions, want all 3", len(partitions))
	}
}

// counterValue returns the value of the unlabelled counter name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.produced.Inc()
	m.failed.Inc()
	m.bytes.Add(3)
	probs, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, c := range []prometheus.Collector{m.produced, m.failed, m.bytes} {
		if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) > 0 {
			t.Errorf("lint: %v %v", probs, err)
		}
	}
	if n := testutil.CollectAndCount(m.produced); n != 1 {
		t.Errorf("%d produced series", n)
	}
}

func TestProduceRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
		st, err := produce(context.Background(), &fakeProducer{}, g.Source(), ProduceConfig{Rate: 200, Count: 400})
		if err != nil {
			t.Fatal(err)
		}
		// A burst of 2, then 398 at 5ms each.
		if st.Sent != 400 || st.Produced != 400 || st.Elapsed < 1980*time.Millisecond || st.Elapsed > 1990*time.Millisecond {
			t.Errorf("stats %+v, want 400 records in 1.99s", st)
		}
	})
}

func TestProduceUntilContextDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := produce(ctx, &fakeProducer{}, g.Source(), ProduceConfig{Rate: 100, Burst: 1})
		if err != nil {
			t.Fatal(err)
		}
		if st.Sent < 100 || st.Sent > 101 || st.Produced != st.Sent {
			t.Errorf("stats %+v, want about 100 records in a second", st)
		}
	})
}

func TestProduceCount(t *testing.T) {
	g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
	st, err := produce(context.Background(), &fakeProducer{}, g.Source(), ProduceConfig{Count: 777})
	if err != nil || st.Sent != 777 || st.Produced != 777 || g.Counts().Records != 777 {
		t.Errorf("stats %+v, generator made %d, error %v", st, g.Counts().Records, err)
	}
}

func TestProduceFailures(t *testing.T) {
	errBroker := errors.New("NOT_LEADER_FOR_PARTITION")
	g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
	p := &fakeProducer{fail: func(n int) error {
		if n%10 == 0 {
			return errBroker
		}
		return nil
	}}
	reg := prometheus.NewPedanticRegistry()
	st, err := produce(context.Background(), p, g.Source(), ProduceConfig{Count: 100, Registerer: reg})
	if st.Failed != 10 || st.Produced != 90 {
		t.Errorf("stats %+v", st)
	}
	if !errors.Is(err, errBroker) || !strings.Contains(err.Error(), "10 of 100 records failed") {
		t.Errorf("error %v", err)
	}
	if got := counterValue(t, reg, "leadscore_synth_records_failed_total"); got != 10 {
		t.Errorf("failed counter %v", got)
	}
}

func TestProduceSourceError(t *testing.T) {
	errSrc := errors.New("synth: replay line 6: invalid JSON")
	n := 0
	src := func() (*kgo.Record, error) {
		if n++; n > 5 {
			return nil, errSrc
		}
		return &kgo.Record{Value: []byte("{}")}, nil
	}
	st, err := produce(context.Background(), &fakeProducer{}, src, ProduceConfig{})
	if !errors.Is(err, errSrc) || st.Sent != 5 || st.Produced != 5 {
		t.Errorf("stats %+v, error %v", st, err)
	}
	st, err = produce(context.Background(), &fakeProducer{}, func() (*kgo.Record, error) { return nil, nil }, ProduceConfig{})
	if err == nil || st.Sent != 0 {
		t.Errorf("nil record: stats %+v, error %v", st, err)
	}
}

// blockingProducer holds every record until ctx is done, then fails it with
// the context's error, as kgo does for records not yet sent; or, with
// hold set, keeps the promises without ever calling them.
type blockingProducer struct {
	hold     bool
	mu       sync.Mutex
	promises []func()
}

func (b *blockingProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	if b.hold {
		b.mu.Lock()
		b.promises = append(b.promises, func() { promise(r, nil) })
		b.mu.Unlock()
		return
	}
	go func() {
		<-ctx.Done()
		promise(r, ctx.Err())
	}()
}

func TestProduceCanceledRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := produce(ctx, &blockingProducer{}, g.Source(), ProduceConfig{Rate: 10, Burst: 1})
		if err != nil {
			t.Fatal(err)
		}
		if st.Canceled != st.Sent || st.Failed != 0 || st.Sent < 10 {
			t.Errorf("stats %+v, want every record canceled", st)
		}
	})
}

func TestProduceDrainTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p := &blockingProducer{hold: true}
		st, err := produce(ctx, p, g.Source(), ProduceConfig{Rate: 5, Burst: 1, DrainTimeout: 3 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "6 records still unacknowledged 3s after the context was done") {
			t.Errorf("error %v", err)
		}
		if st.Elapsed != 4*time.Second || st.Sent != 6 {
			t.Errorf("stats %+v, want 6 sent and a return after 1s+3s", st)
		}
		for _, f := range p.promises {
			f()
		}
	})
}

func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGen(t, GenConfig{Step: time.Second, Start: testStart})
		var out bytes.Buffer
		st, err := produce(context.Background(), &fakeProducer{}, g.Source(),
			ProduceConfig{Rate: 100, Burst: 1, Count: 250, Progress: &out, ProgressEvery: 1003 * time.Millisecond})
		if err != nil || st.Produced != 250 {
			t.Fatalf("stats %+v, error %v", st, err)
		}
		// Ticks at 1.003s and 2.006s fall between sends (every 10ms).
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		want := []string{
			"produced 101  101 rec/s  errors 0  [#########...............] 40.4%  ETA 1s",
			"produced 201  100 rec/s  errors 0  [###################.....] 80.4%  ETA 0s",
			"produced 250  100 rec/s avg  errors 0  [########################] 100.0%  in 2.49s",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("progress:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
		}
	})

	// On a terminal the line is rewritten in place.
	var out bytes.Buffer
	p := &progress{w: &out, tty: true, start: testStart, lastT: testStart}
	p.print(1234567, 2, testStart.Add(time.Second), false)
	p.print(1234568, 2, testStart.Add(2*time.Second), true)
	want := "\rproduced 1,234,567  1,234,567 rec/s  errors 2" +
		"\rproduced 1,234,568  617,284 rec/s avg  errors 2  in 2s\n"
	if out.String() != want {
		t.Errorf("tty progress %q, want %q", out.String(), want)
	}
}

func TestProduceConfigValidate(t *testing.T) {
	for _, cfg := range []ProduceConfig{
		{Rate: -1}, {Burst: -1}, {Count: -1}, {ProgressEvery: -1}, {DrainTimeout: -1},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ProduceConfig.") {
			t.Errorf("%+v: %v", cfg, err)
		}
		if _, err := produce(context.Background(), &fakeProducer{}, nil, cfg); err == nil {
			t.Errorf("%+v: produce accepted it", cfg)
		}
	}
}
