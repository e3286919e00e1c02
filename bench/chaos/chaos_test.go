package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
	"github.com/leadscore/leadscore/sinks/archive"
)

// TestChaosShort runs the harness small against a real broker: kill -9
// and restarts, one instance loss, no broker restart (the broker may not
// be ours to restart). Any duplicate, missing or different output fails.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs leadscore processes against a real broker for about 40 s")
	}
	cl := kafkatest.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Brokers:        cl.Brokers,
		Events:         20_000,
		Leads:          2_000,
		Kills:          3,
		Partitions:     4,
		Seed:           7,
		Rate:           1_000,
		SessionTimeout: 6 * time.Second,
		Dir:            t.TempDir(),
		Timeout:        2 * time.Minute,
		Log:            t.Output(),
	})
	if rep != nil {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Logf("report:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) > 0 {
		t.Fatalf("exactly once broken:\n  %s", strings.Join(f, "\n  "))
	}
	if rep.Kills < 3 || rep.InstanceLosses != 1 {
		t.Errorf("chaos done: %d kills, %d instance losses; want at least 3 and 1", rep.Kills, rep.InstanceLosses)
	}
	if rep.MQL.Expected == 0 || rep.Archive[archive.TableTouchpoints].Expected < 15_000 || rep.Archive[archive.TableDeadLetters].Expected == 0 {
		t.Errorf("the stream exercised too little: %d MQL events, %d touchpoint rows, %d dead letters",
			rep.MQL.Expected, rep.Archive[archive.TableTouchpoints].Expected, rep.Archive[archive.TableDeadLetters].Expected)
	}
}

func TestCompare(t *testing.T) {
	type item struct{ v int }
	eq := func(a, b item) bool { return a == b }
	build := func(keys ...string) *multiset[string, item] {
		m := newMultiset[string, item]()
		for _, k := range keys {
			name, val, _ := strings.Cut(k, "=")
			v := 0
			if val != "" {
				v = int(val[0] - '0')
			}
			m.add(name, item{v})
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		want, got []string
		tally     Tally
	}{
		{"equal", []string{"a", "b"}, []string{"b", "a"}, Tally{Expected: 2, Seen: 2}},
		{"duplicate", []string{"a", "b"}, []string{"a", "b", "b"}, Tally{Expected: 2, Seen: 3, Duplicated: 1}},
		{"missing", []string{"a", "b"}, []string{"a"}, Tally{Expected: 2, Seen: 1, Missing: 1}},
		{"unexpected twice", []string{"a"}, []string{"a", "c", "c"}, Tally{Expected: 1, Seen: 3, Unexpected: 1, Duplicated: 1}},
		{"mismatch", []string{"a=1"}, []string{"a=2"}, Tally{Expected: 1, Seen: 1, Mismatched: 1}},
		{"reference duplicate", []string{"a", "a"}, []string{"a"}, Tally{Expected: 1, ExpectedDuplicated: 1, Seen: 1}},
		{"empty", nil, nil, Tally{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compare(build(tc.want...), build(tc.got...), eq)
			ok := tc.tally.ExpectedDuplicated == 0 && tc.tally.Duplicated == 0 && tc.tally.Missing == 0 &&
				tc.tally.Unexpected == 0 && tc.tally.Mismatched == 0
			if got.OK() != ok {
				t.Errorf("OK() = %v, want %v (%+v)", got.OK(), ok, got)
			}
			got.Examples = nil
			if got.Expected != tc.tally.Expected || got.Seen != tc.tally.Seen || got.Duplicated != tc.tally.Duplicated ||
				got.Missing != tc.tally.Missing || got.Unexpected != tc.tally.Unexpected ||
				got.Mismatched != tc.tally.Mismatched || got.ExpectedDuplicated != tc.tally.ExpectedDuplicated {
				t.Errorf("compare = %+v, want %+v", got, tc.tally)
			}
		})
	}
}

func TestNear(t *testing.T) {
	for _, tc := range []struct {
		a, b float64
		want bool
	}{
		{1, 1, true},
		{100, 100 * (1 + 5e-10), true},
		{100, 100 * (1 + 2e-9), false},
		{0, 1e-13, true},
		{0, 1e-6, false},
	} {
		if got := near(tc.a, tc.b); got != tc.want {
			t.Errorf("near(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:19092"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for field, c := range map[string]Config{
		"Brokers":        {},
		"Brokers[0]":     {Brokers: []string{""}},
		"Events":         {Brokers: ok.Brokers, Events: -1},
		"Leads":          {Brokers: ok.Brokers, Leads: -1},
		"Partitions":     {Brokers: ok.Brokers, Partitions: -2},
		"Rate":           {Brokers: ok.Brokers, Rate: -1},
		"Step":           {Brokers: ok.Brokers, Step: -time.Second},
		"SessionTimeout": {Brokers: ok.Brokers, SessionTimeout: time.Millisecond},
		"RollRecords":    {Brokers: ok.Brokers, RollRecords: -1},
		"Timeout":        {Brokers: ok.Brokers, Timeout: -time.Second},
	} {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "Config."+field+":") {
			t.Errorf("%s: Validate() = %v, want an error naming Config.%s", field, err, field)
		}
	}
}

func TestPartitionedIsStable(t *testing.T) {
	keys := []string{"lead-1", "", "lead-2", "", "anon-0a", "lead-1", ""}
	parts := func() []int32 {
		i := 0
		src := partitioned(func() (*kgo.Record, error) {
			if i == len(keys) {
				return nil, io.EOF
			}
			i++
			return &kgo.Record{Key: []byte(keys[i-1])}, nil
		}, "topic", 4)
		var out []int32
		for {
			r, err := src()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil || r.Topic != "topic" || r.Partition < 0 || r.Partition >= 4 {
				t.Fatalf("record %+v, err %v", r, err)
			}
			out = append(out, r.Partition)
		}
	}
	a, b := parts(), parts()
	if !slices.Equal(a, b) || len(a) != len(keys) {
		t.Fatalf("two copies got different partitions: %v and %v", a, b)
	}
	if a[0] != a[5] {
		t.Errorf("the same key got partitions %d and %d", a[0], a[5])
	}
	if a[1] != 0 || a[3] != 1 || a[6] != 2 {
		t.Errorf("records without a key are not round robin: %v", a)
	}
}
