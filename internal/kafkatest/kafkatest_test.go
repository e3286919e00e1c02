package kafkatest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var legalName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func TestUniqueName(t *testing.T) {
	tests := []struct {
		in, wantPrefix string
	}{
		{"TestX", "TestX-"},
		{"TestX/sub_case.1", "TestX-sub-case-1-"},
		{"TestÜber/ä b", "Test--ber----b-"},
		{"", "test-"},
		{strings.Repeat("a", 400), strings.Repeat("a", maxNameBase) + "-"},
	}
	for _, tt := range tests {
		got := uniqueName(tt.in)
		if !strings.HasPrefix(got, tt.wantPrefix) || len(got) != len(tt.wantPrefix)+12 {
			t.Errorf("uniqueName(%q) = %q, want %q + 12 hex digits", tt.in, got, tt.wantPrefix)
		}
		if !legalName.MatchString(got) {
			t.Errorf("uniqueName(%q) = %q: not a legal topic name", tt.in, got)
		}
	}
	if a, b := uniqueName("T"), uniqueName("T"); a == b {
		t.Errorf("two calls gave the same name %q", a)
	}
}

func TestParseBrokersLine(t *testing.T) {
	got, err := parseBrokersLine("noise\nKAFKA_BROKERS=127.0.0.1:19092, 127.0.0.1:19094\n")
	if err != nil || len(got) != 2 || got[0] != "127.0.0.1:19092" || got[1] != "127.0.0.1:19094" {
		t.Errorf("parseBrokersLine = %v, %v", got, err)
	}
	if _, err := parseBrokersLine("up pid=1\n"); err == nil {
		t.Error("parseBrokersLine without the line: want error")
	}
}

func TestScriptVar(t *testing.T) {
	out := "KAFKA_BROKERS=127.0.0.1:19092\nKAFKA_SASL_SSL_BROKERS=127.0.0.1:19094\nKAFKA_TLS_CA_FILE=/x/tls/ca.pem \n"
	if got := scriptVar(out, EnvSASLSSLBrokers); got != "127.0.0.1:19094" {
		t.Errorf("scriptVar(%s) = %q", EnvSASLSSLBrokers, got)
	}
	if got := scriptVar(out, EnvTLSCAFile); got != "/x/tls/ca.pem" {
		t.Errorf("scriptVar(%s) = %q", EnvTLSCAFile, got)
	}
	if got := scriptVar("KAFKA_BROKERS=a:1\n", EnvTLSCAFile); got != "" {
		t.Errorf("scriptVar without the line = %q, want empty", got)
	}
}

func TestRandomClusterID(t *testing.T) {
	id := randomClusterID()
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(id) {
		t.Errorf("cluster id %q: want 22 base64url characters", id)
	}
}

func TestDockerHintCheap(t *testing.T) {
	// Whatever the machine has, the probe that gates the container path
	// must not wait on the network.
	start := time.Now()
	where, ok := dockerSocketHint()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("dockerSocketHint took %v", d)
	}
	t.Logf("docker hint: %q %v", where, ok)
}

// roundTrip produces records with a plain producer and reads them back.
func roundTrip(t *testing.T, c *Cluster) {
	t.Helper()
	topic := c.Topic(t, 2, nil)
	ctx := t.Context()

	prod, err := kgo.NewClient(append(c.Opts(), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 4 {
		r := &kgo.Record{Key: []byte("lead-1"), Value: fmt.Appendf(nil, "v%d", i)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	cons, err := kgo.NewClient(append(c.Opts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(c.Group(t)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := consume(t, cons, 4)
	if want := []string{"v0", "v1", "v2", "v3"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("consumed %v, want %v", got, want)
	}
}

// consume polls until n records arrived (or 30 s passed) and returns
// their values in order.
func consume(t *testing.T, cl *kgo.Client, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before time-out: %v", len(got), n, got)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func TestFake(t *testing.T) {
	c := Fake(t)
	if c.Kind != KindFake || c.KFake == nil || len(c.Brokers) != 1 {
		t.Fatalf("Fake = %+v", c)
	}
	roundTrip(t, c)
}

func TestFakeTopicDeletedAtCleanup(t *testing.T) {
	c := Fake(t)
	testTopicDeleted(t, c)
}

func testTopicDeleted(t *testing.T, c *Cluster) {
	var topic string
	t.Run("creates", func(t *testing.T) {
		topic = c.Topic(t, 3, map[string]*string{"retention.ms": new("3600000")})
		tds, err := c.Admin(t).ListTopics(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(tds[topic].Partitions); n != 3 {
			t.Errorf("topic %s has %d partitions, want 3", topic, n)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		tds, err := c.Admin(t).ListTopics(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		if !tds.Has(topic) || tds[topic].Err != nil {
			return // gone
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s still exists after the subtest's cleanup", topic)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBrokerMemoised(t *testing.T) {
	a := Broker(t)
	if b := Broker(t); a != b {
		t.Errorf("Broker returned %p then %p", a, b)
	}
	switch a.Kind {
	case KindEnv, KindTestcontainers, KindLocalScript:
	default:
		t.Errorf("Broker kind %q", a.Kind)
	}
}

func TestBrokerRoundTrip(t *testing.T) {
	roundTrip(t, Broker(t))
}

func TestBrokerTopicDeletedAtCleanup(t *testing.T) {
	testTopicDeleted(t, Broker(t))
}

// TestBrokerTransactions checks, on the real broker, what the pipeline's
// exactly-once output relies on: a read_committed consumer sees committed
// transactions and never an aborted one, while the aborted records really
// are in the log (a read_uncommitted consumer sees them).
func TestBrokerTransactions(t *testing.T) {
	c := Broker(t)
	topic := c.Topic(t, 1, nil)
	ctx := t.Context()

	prod, err := kgo.NewClient(append(c.Opts(),
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("txn-"+uniqueName(t.Name())),
		kgo.TransactionTimeout(30*time.Second),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	txn := func(prefix string, n int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin %s: %v", prefix, err)
		}
		for i := range n {
			r := &kgo.Record{Key: []byte("lead-1"), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", prefix, err)
			}
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end %s: %v", prefix, err)
		}
	}
	txn("commit1", 3, kgo.TryCommit)
	txn("abort", 3, kgo.TryAbort)
	txn("commit2", 2, kgo.TryCommit)

	read := func(level kgo.IsolationLevel, n int) []string {
		cl, err := kgo.NewClient(append(c.Opts(),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(level),
		)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return consume(t, cl, n)
	}

	// One partition: commit2 lies after the aborted batch, so having read
	// it means read_committed has passed over the aborted records.
	committed := read(kgo.ReadCommitted(), 5)
	want := "commit1-0,commit1-1,commit1-2,commit2-0,commit2-1"
	if got := strings.Join(committed, ","); got != want {
		t.Errorf("read_committed saw %s, want %s", got, want)
	}
	all := read(kgo.ReadUncommitted(), 8)
	wantAll := "commit1-0,commit1-1,commit1-2,abort-0,abort-1,abort-2,commit2-0,commit2-1"
	if got := strings.Join(all, ","); got != wantAll {
		t.Errorf("read_uncommitted saw %s, want %s", got, wantAll)
	}
}
