package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

// checkInvariants checks what every successfully decoded touchpoint
// guarantees to the engine.
func checkInvariants(t *testing.T, tp *scorer.Touchpoint) {
	t.Helper()
	if n := len(tp.EventID); n < 1 || n > 128 {
		t.Errorf("EventID %q: %d bytes", tp.EventID, n)
	}
	if tp.LeadID == "" && tp.AnonymousID == "" {
		t.Error("neither LeadID nor AnonymousID")
	}
	if len(tp.LeadID) > 256 || len(tp.AnonymousID) > 256 {
		t.Error("id over 256 bytes")
	}
	if n := len(tp.Type); n < 1 || n > 128 {
		t.Errorf("Type %q: %d bytes", tp.Type, n)
	}
	if len(tp.AccountID) > 256 || len(tp.Channel) > 256 || len(tp.Campaign) > 256 {
		t.Error("optional field over 256 bytes")
	}
	if tp.OccurredAt < 0 || tp.OccurredAt > maxEventMillis {
		t.Errorf("OccurredAt %d out of range", tp.OccurredAt)
	}
	for _, s := range []string{tp.EventID, tp.LeadID, tp.AnonymousID, tp.AccountID, tp.Type, tp.Channel, tp.Campaign} {
		if !utf8.ValidString(s) {
			t.Errorf("invalid UTF-8 in %q", s)
		}
	}
	for _, as := range [][]scorer.Attr{tp.Props, tp.Traits} {
		seen := map[string]bool{}
		for _, a := range as {
			if !utf8.ValidString(a.Key) || !utf8.ValidString(a.Value) {
				t.Errorf("invalid UTF-8 in attr %q=%q", a.Key, a.Value)
			}
			if seen[a.Key] {
				t.Errorf("duplicate attr key %q", a.Key)
			}
			seen[a.Key] = true
		}
	}
	for _, raw := range [][]byte{tp.RawProperties, tp.RawTraits} {
		if raw != nil && (!json.Valid(raw) || raw[0] != '{') {
			t.Errorf("raw object is not a JSON object: %q", raw)
		}
	}
	if tp.RawProperties == nil && len(tp.Props) > 0 || tp.RawTraits == nil && len(tp.Traits) > 0 {
		t.Error("attrs without their raw object")
	}
}

// refTouchpoint is the reference decoder's result.
type refTouchpoint struct {
	EventID, LeadID, AnonymousID, AccountID, Type, Channel, Campaign string
	OccurredAt                                                       int64
	Props, Traits                                                    map[string]string
	RawProperties, RawTraits                                         string
}

func fromTouchpoint(tp *scorer.Touchpoint) refTouchpoint {
	r := refTouchpoint{
		EventID: tp.EventID, LeadID: tp.LeadID, AnonymousID: tp.AnonymousID, AccountID: tp.AccountID,
		Type: tp.Type, Channel: tp.Channel, Campaign: tp.Campaign, OccurredAt: tp.OccurredAt,
		Props: map[string]string{}, Traits: map[string]string{},
		RawProperties: string(tp.RawProperties), RawTraits: string(tp.RawTraits),
	}
	for _, a := range tp.Props {
		r.Props[a.Key] = a.Value
	}
	for _, a := range tp.Traits {
		r.Traits[a.Key] = a.Value
	}
	return r
}

var refTimeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// refDecode is a slow, obviously-correct decoder of canonical JSON built
// on encoding/json, for cross-checking (all properties, default limits).
func refDecode(key, value []byte) (refTouchpoint, error) {
	var r refTouchpoint
	fail := errors.New
	if len(value) > 1<<20 || len(key) == 0 {
		return r, fail("size or key")
	}
	if !utf8.Valid(value) {
		return r, fail("utf8")
	}
	if refDepth(value) > 32 {
		return r, fail("depth")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(value, &top); err != nil || top == nil {
		return r, fail("not an object")
	}
	str := func(name string, maxLen int) (string, error) {
		raw, ok := top[name]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if len(s) > maxLen {
			return "", fail("too long")
		}
		return s, nil
	}
	var err error
	for _, f := range []struct {
		dst    *string
		name   string
		maxLen int
	}{
		{&r.EventID, "event_id", 128}, {&r.LeadID, "lead_id", 256}, {&r.AnonymousID, "anonymous_id", 256},
		{&r.AccountID, "account_id", 256}, {&r.Type, "type", 128}, {&r.Channel, "channel", 256}, {&r.Campaign, "campaign", 256},
	} {
		if *f.dst, err = str(f.name, f.maxLen); err != nil {
			return r, err
		}
	}
	obj := func(name string, raw *string) (map[string]string, error) {
		m := map[string]string{}
		b, ok := top[name]
		if !ok || string(b) == "null" {
			return m, nil
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o, ok := v.(map[string]any)
		if !ok {
			return nil, fail("not an object")
		}
		*raw = string(b)
		for k, x := range o {
			switch x := x.(type) {
			case string:
				m[k] = x
			case json.Number:
				m[k] = x.String()
			case bool:
				m[k] = strconv.FormatBool(x)
			}
		}
		return m, nil
	}
	if r.Props, err = obj("properties", &r.RawProperties); err != nil {
		return r, err
	}
	if r.Traits, err = obj("traits", &r.RawTraits); err != nil {
		return r, err
	}
	raw, ok := top["occurred_at"]
	if !ok || string(raw) == "null" {
		return r, fail("no time")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !refTimeRE.MatchString(s) {
			return r, fail("bad time")
		}
		r.OccurredAt = tm.Unix()*1000 + int64(tm.Nanosecond()/1e6)
	} else {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || raw[0] == '-' || raw[0] == '+' {
			return r, fail("bad time")
		}
		r.OccurredAt = n
	}
	if r.OccurredAt < 0 || r.OccurredAt > 253402300799999 {
		return r, fail("time range")
	}
	if r.EventID == "" || r.Type == "" || r.LeadID == "" && r.AnonymousID == "" {
		return r, fail("missing")
	}
	if string(key) != r.LeadID && string(key) != r.AnonymousID {
		return r, fail("key")
	}
	return r, nil
}

// refDepth is the maximum nesting of objects and arrays in valid JSON.
func refDepth(b []byte) int {
	depth, maxDepth, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			maxDepth = max(maxDepth, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return maxDepth
}

// seedValues are the corpus seeds shared by the fuzzers: the golden values
// and a few hand-made ones.
func seedValues(t testing.TB) [][]byte {
	files, _ := filepath.Glob("testdata/decode/*.txt")
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vi := bytes.Index(b, []byte("---- value\n"))
		wi := bytes.Index(b, []byte("\n---- want\n"))
		if vi >= 0 && wi > vi {
			out = append(out, b[vi+len("---- value\n"):wi])
		}
	}
	return append(out,
		[]byte(typicalJSON), []byte(typicalSegment), []byte(typicalCloudEvent),
		[]byte(`{"event_id":"e","lead_id":"k","type":"t","occurred_at":"1970-01-01T00:00:00.0001-00:01"}`),
		[]byte(`{"event_id":"\ud83d","lead_id":"k","type":"t","occurred_at":99,"properties":{"a":[{"b":{}}],"a":1}}`),
		[]byte(`{"event_id":"e","lead_id":"k","type":"t","occurred_at":1e3}`),
		[]byte(`[{"event_id":"e"}]`),
	)
}

func FuzzDecodeJSON(f *testing.F) {
	for _, v := range seedValues(f) {
		f.Add([]byte("k"), v)
		f.Add([]byte("lead-42"), v)
	}
	d, err := NewDecoder(DecoderConfig{Format: FormatJSON})
	if err != nil {
		f.Fatal(err)
	}
	var tp scorer.Touchpoint
	f.Fuzz(func(t *testing.T, key, value []byte) {
		err := d.Decode(key, value, nil, &tp)
		want, werr := refDecode(key, value)
		if err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if werr == nil {
				t.Fatalf("decoder: %v; reference accepts: %+v", err, want)
			}
			return
		}
		checkInvariants(t, &tp)
		if werr != nil {
			t.Fatalf("decoder accepts %+v; reference: %v", tp, werr)
		}
		if got := fromTouchpoint(&tp); !refEqual(got, want) {
			t.Fatalf("decoder and reference disagree:\n got %+v\nwant %+v", got, want)
		}
	})
}

func refEqual(a, b refTouchpoint) bool {
	return maps.Equal(a.Props, b.Props) && maps.Equal(a.Traits, b.Traits) &&
		a.EventID == b.EventID && a.LeadID == b.LeadID && a.AnonymousID == b.AnonymousID &&
		a.AccountID == b.AccountID && a.Type == b.Type && a.Channel == b.Channel && a.Campaign == b.Campaign &&
		a.OccurredAt == b.OccurredAt && a.RawProperties == b.RawProperties && a.RawTraits == b.RawTraits
}

func FuzzDecodeSegment(f *testing.F) {
	for _, v := range seedValues(f) {
		f.Add([]byte("user-1"), v)
	}
	d, err := NewDecoder(DecoderConfig{Format: FormatSegment})
	if err != nil {
		f.Fatal(err)
	}
	var tp scorer.Touchpoint
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if err := d.Decode(key, value, nil, &tp); err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		checkInvariants(t, &tp)
		if !json.Valid(value) {
			t.Fatalf("accepted invalid JSON %q", value)
		}
	})
}

func FuzzDecodeCloudEvents(f *testing.F) {
	for _, v := range seedValues(f) {
		f.Add([]byte("lead-5"), v, false, "", "", "")
		f.Add([]byte("lead-8"), v, true, "ce-1", "com.acme.page_view", "2024-06-02T08:00:00Z")
	}
	d, err := NewDecoder(DecoderConfig{}) // auto: exercises detection too
	if err != nil {
		f.Fatal(err)
	}
	var tp scorer.Touchpoint
	f.Fuzz(func(t *testing.T, key, value []byte, binary bool, id, typ, tm string) {
		var hs []kgo.RecordHeader
		if binary {
			hs = []kgo.RecordHeader{
				{Key: "ce_specversion", Value: []byte("1.0")},
				{Key: "ce_id", Value: []byte(id)},
				{Key: "ce_type", Value: []byte(typ)},
				{Key: "ce_time", Value: []byte(tm)},
				{Key: "ce_leadid", Value: key},
			}
		}
		if err := d.Decode(key, value, hs, &tp); err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		checkInvariants(t, &tp)
		if !binary && !json.Valid(value) {
			t.Fatalf("accepted invalid JSON %q", value)
		}
	})
}
