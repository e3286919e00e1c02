package synth

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func readAll(src Source) ([]*kgo.Record, error) {
	var out []*kgo.Record
	for {
		r, err := src()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func TestReplayJSONL(t *testing.T) {
	in := strings.Join([]string{
		`{"event_id":"e1","lead_id":"lead-1","type":"page_view","occurred_at":1762070400000}`,
		``,
		`   {"event_id":"e2","anonymous_id":"anon-1","type":"page_view","occurred_at":"2026-11-02T09:00:00Z"}  `,
		`{"key":"lead-2","value":{"event_id":"e3","lead_id":"lead-2"},"headers":{"z":"1","a":"2"},"partition":2}`,
		`{"key":"","value":"{not json"}`,
		`{"key":null,"value":null}`,
		`{"value":{"anonymous_id":"anon-9","lead_id":""}}`,
		`{"value":[1,2]    ,"key":"k"}`,
	}, "\n") + "\n"
	recs, err := readAll(ReplayJSONL(strings.NewReader(in), ""))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		key, value, headers string
		partition           int32
		nilKey, nilValue    bool
	}
	wants := []want{
		{key: "lead-1", value: `{"event_id":"e1","lead_id":"lead-1","type":"page_view","occurred_at":1762070400000}`},
		{key: "anon-1", value: `{"event_id":"e2","anonymous_id":"anon-1","type":"page_view","occurred_at":"2026-11-02T09:00:00Z"}`},
		{key: "lead-2", value: `{"event_id":"e3","lead_id":"lead-2"}`, headers: "a=2 z=1 ", partition: 2},
		{nilKey: true, value: `{not json`},
		{nilKey: true, nilValue: true},
		{key: "anon-9", value: `{"anonymous_id":"anon-9","lead_id":""}`},
		{key: "k", value: `[1,2]`},
	}
	if len(recs) != len(wants) {
		t.Fatalf("%d records, want %d", len(recs), len(wants))
	}
	for i, w := range wants {
		r := recs[i]
		var h strings.Builder
		for _, kv := range r.Headers {
			fmt.Fprintf(&h, "%s=%s ", kv.Key, kv.Value)
		}
		switch {
		case r.Topic != DefaultTopic:
			t.Errorf("%d: topic %q", i, r.Topic)
		case w.nilKey != (r.Key == nil) || string(r.Key) != w.key:
			t.Errorf("%d: key %q (nil %v), want %q", i, r.Key, r.Key == nil, w.key)
		case w.nilValue != (r.Value == nil) || string(r.Value) != w.value:
			t.Errorf("%d: value %q, want %q", i, r.Value, w.value)
		case h.String() != w.headers:
			t.Errorf("%d: headers %q, want %q", i, h.String(), w.headers)
		case r.Partition != w.partition:
			t.Errorf("%d: partition %d, want %d", i, r.Partition, w.partition)
		}
	}
}

func TestReplayJSONLErrors(t *testing.T) {
	good := `{"event_id":"e1","lead_id":"lead-1","type":"page_view","occurred_at":1}`
	for _, tc := range []struct {
		bad  string
		want string
	}{
		{`{"event_id":"e1",`, "invalid JSON"},
		{`[1,2,3]`, "not a JSON object but array"},
		{`"lead-1"`, "not a JSON object but string"},
		{`null`, "not a JSON object"},
		{`{"event_id":"e1","type":"page_view"}`, "neither lead_id nor anonymous_id"},
		{`{"lead_id":17}`, "lead_id: must be a string, not number"},
		{`{"key":"k","value":{},"headerz":{}}`, `unknown field "headerz"`},
		{`{"key":1,"value":{}}`, "envelope key: must be a string or null"},
		{`{"key":"k","value":{},"headers":{"a":1}}`, "envelope"},
		{`{"key":"k","value":{},"partition":-1}`, "partition: -1 is negative"},
		{`{"value":"raw"}`, `no "key"`},
		{`{"value":{"type":"x"}}`, "neither lead_id nor anonymous_id"},
		{`{"a":1} {"b":2}`, "invalid JSON"},
	} {
		in := good + "\n\n" + good + "\n" + tc.bad + "\n" + good + "\n"
		src := ReplayJSONL(strings.NewReader(in), "t")
		recs, err := readAll(src)
		if len(recs) != 2 {
			t.Errorf("%s: %d records before the error, want 2", tc.bad, len(recs))
		}
		if err == nil || !strings.HasPrefix(err.Error(), "synth: replay line 4: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want line 4 and %q", tc.bad, err, tc.want)
		}
		// The error sticks.
		if _, err2 := src(); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("%s: next call gives %v", tc.bad, err2)
		}
	}
}

func TestReplayJSONLLongLine(t *testing.T) {
	in := `{"lead_id":"a","x":"` + strings.Repeat("x", maxReplayLine) + `"}` + "\n"
	_, err := readAll(ReplayJSONL(strings.NewReader(in), "t"))
	if err == nil || !strings.Contains(err.Error(), "line 1: longer than") {
		t.Errorf("error %v", err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		f.n++
		return copy(p, `{"lead_id":"a"}`+"\n"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestReplayJSONLReadError(t *testing.T) {
	recs, err := readAll(ReplayJSONL(&failingReader{}, "t"))
	if len(recs) != 1 || err == nil || !strings.Contains(err.Error(), "after line 1: disk on fire") {
		t.Errorf("%d records, error %v", len(recs), err)
	}
}
