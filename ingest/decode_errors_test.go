package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

// good returns a valid canonical record with field name=raw JSON replaced
// or added (raw "" removes the field).
func good(name, raw string) string {
	fields := [][2]string{
		{"event_id", `"e-1"`}, {"lead_id", `"k"`}, {"type", `"page_view"`},
		{"occurred_at", `"2024-01-01T00:00:00Z"`}, {"properties", `{"url":"/x"}`},
	}
	var b strings.Builder
	b.WriteByte('{')
	found := false
	for _, f := range fields {
		if f[0] == name {
			found = true
			f[1] = raw
		}
		if f[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	if !found && raw != "" {
		b.WriteString(`,"` + name + `":` + raw)
	}
	b.WriteByte('}')
	return b.String()
}

func TestDecodeReasons(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000)
	huge := `{"pad":"` + strings.Repeat("x", 2<<20) + `"}`
	ce := func(attrs string) string {
		return `{"specversion":"1.0","id":"c1","source":"s","type":"t","time":"2024-01-01T00:00:00Z","leadid":"k"` + attrs + `}`
	}
	seg := func(attrs string) string {
		return `{"messageId":"m","userId":"k","timestamp":"2024-01-01T00:00:00Z"` + attrs + `}`
	}
	tests := []struct {
		name    string
		format  Format
		key     string
		value   string
		headers []kgo.RecordHeader
		reason  Reason
		field   string
	}{
		{name: "oversized", value: huge, reason: ReasonOversized},
		{name: "oversized before key", key: "-", value: huge, reason: ReasonOversized},
		{name: "empty key", key: "-", value: good("", ""), reason: ReasonMissingKey},
		{name: "empty value", value: "", reason: ReasonInvalidJSON},
		{name: "not json", value: "hello", reason: ReasonInvalidJSON},
		{name: "truncated", value: `{"event_id":"e`, reason: ReasonInvalidJSON, field: "event_id"},
		{name: "trailing comma", value: `{"event_id":"e",}`, reason: ReasonInvalidJSON},
		{name: "single quotes", value: `{'event_id':'e'}`, reason: ReasonInvalidJSON},
		{name: "trailing data", value: good("", "") + "x", reason: ReasonInvalidJSON},
		{name: "two objects", value: good("", "") + good("", ""), reason: ReasonInvalidJSON},
		{name: "leading zero", value: good("occurred_at", "01"), reason: ReasonInvalidJSON},
		{name: "NaN", value: good("occurred_at", "NaN"), reason: ReasonInvalidJSON, field: "occurred_at"},
		{name: "bad escape", value: good("event_id", `"a\x"`), reason: ReasonInvalidJSON, field: "event_id"},
		{name: "short unicode escape", value: good("event_id", `"\u12"`), reason: ReasonInvalidJSON, field: "event_id"},
		{name: "raw newline in string", value: good("event_id", "\"a\nb\""), reason: ReasonInvalidJSON, field: "event_id"},
		{name: "bad nested", value: good("properties", `{"a":[1,]}`), reason: ReasonInvalidJSON, field: "properties"},
		{name: "invalid utf8 value", value: good("event_id", "\"\xff\""), reason: ReasonInvalidUTF8, field: "event_id"},
		{name: "invalid utf8 nested", value: good("properties", "{\"u\":\"\xc3\x28\"}"), reason: ReasonInvalidUTF8, field: "properties"},
		{name: "invalid utf8 key", value: "{\"\xed\xa0\x80\":1}", reason: ReasonInvalidUTF8},
		{name: "deep 1000", value: deep, reason: ReasonTooDeep, field: "a"},
		{name: "deep 33", value: good("properties", strings.Repeat("[", 32)+strings.Repeat("]", 32)), reason: ReasonTooDeep, field: "properties"},
		{name: "top-level array", value: `[1]`, reason: ReasonWrongType},
		{name: "event_id number", value: good("event_id", `123`), reason: ReasonWrongType, field: "event_id"},
		{name: "lead_id object", value: good("lead_id", `{}`), reason: ReasonWrongType, field: "lead_id"},
		{name: "properties array", value: good("properties", `[]`), reason: ReasonWrongType, field: "properties"},
		{name: "occurred_at bool", value: good("occurred_at", `true`), reason: ReasonWrongType, field: "occurred_at"},
		{name: "traits string", value: good("traits", `"cto"`), reason: ReasonWrongType, field: "traits"},
		{name: "missing event_id", value: good("event_id", ""), reason: ReasonMissingField, field: "event_id"},
		{name: "empty event_id", value: good("event_id", `""`), reason: ReasonMissingField, field: "event_id"},
		{name: "null type", value: good("type", `null`), reason: ReasonMissingField, field: "type"},
		{name: "missing ids", value: good("lead_id", ""), reason: ReasonMissingField, field: "lead_id"},
		{name: "missing time", value: good("occurred_at", ""), reason: ReasonMissingField, field: "occurred_at"},
		{name: "event_id 129", value: good("event_id", `"`+strings.Repeat("e", 129)+`"`), reason: ReasonFieldTooLong, field: "event_id"},
		{name: "lead_id 257", key: strings.Repeat("k", 257), value: good("lead_id", `"`+strings.Repeat("k", 257)+`"`), reason: ReasonFieldTooLong, field: "lead_id"},
		{name: "type 129", value: good("type", `"`+strings.Repeat("t", 129)+`"`), reason: ReasonFieldTooLong, field: "type"},
		{name: "campaign 257", value: good("campaign", `"`+strings.Repeat("c", 257)+`"`), reason: ReasonFieldTooLong, field: "campaign"},
		{name: "yesterday", value: good("occurred_at", `"yesterday"`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "month 13", value: good("occurred_at", `"2024-13-01T00:00:00Z"`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "feb 30", value: good("occurred_at", `"2024-02-30T00:00:00Z"`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "no zone", value: good("occurred_at", `"2024-01-01T00:00:00"`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "ms as string", value: good("occurred_at", `"1700000000000"`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "1e30", value: good("occurred_at", `1e30`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "fractional ms", value: good("occurred_at", `1700000000000.5`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "negative", value: good("occurred_at", `-1`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "before epoch", value: good("occurred_at", `"1969-12-31T23:59:59.999Z"`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "year 10000 ms", value: good("occurred_at", `253402300800000`), reason: ReasonBadTime, field: "occurred_at"},
		{name: "key mismatch", key: "other", value: good("", ""), reason: ReasonKeyMismatch},
		{name: "key is account", key: "acme.com", value: good("account_id", `"acme.com"`), reason: ReasonKeyMismatch},
		{name: "segment screen", value: seg(`,"type":"screen","name":"Home"`), reason: ReasonUnsupported, field: "type"},
		{name: "segment group", value: seg(`,"type":"group","groupId":"g"`), reason: ReasonUnsupported, field: "type"},
		{name: "segment alias", value: seg(`,"type":"alias","previousId":"p"`), reason: ReasonUnsupported, field: "type"},
		{name: "segment unknown call", format: FormatSegment, value: seg(`,"type":"purchase"`), reason: ReasonUnsupported, field: "type"},
		{name: "segment track no event", value: seg(`,"type":"track"`), reason: ReasonMissingField, field: "event"},
		{name: "segment event punctuation", value: seg(`,"type":"track","event":"!!"`), reason: ReasonMissingField, field: "event"},
		{name: "segment no type", format: FormatSegment, value: seg(``), reason: ReasonMissingField, field: "type"},
		{name: "segment no messageId", format: FormatSegment, value: `{"type":"page","userId":"k","timestamp":"2024-01-01T00:00:00Z"}`, reason: ReasonMissingField, field: "messageId"},
		{name: "segment bad timestamp", value: seg(`,"type":"page","timestamp":"2024-01-01"`), reason: ReasonBadTime, field: "timestamp"},
		{name: "segment userId number", value: `{"type":"page","messageId":"m","userId":7,"timestamp":"2024-01-01T00:00:00Z"}`, reason: ReasonWrongType, field: "userId"},
		{name: "segment context string", value: seg(`,"type":"page","context":"x"`), reason: ReasonWrongType, field: "context"},
		{name: "ce data base64", value: ce(`,"data_base64":"AAAA"`), reason: ReasonUnsupported, field: "data_base64"},
		{name: "ce xml", value: ce(`,"datacontenttype":"application/xml","data":{}`), reason: ReasonUnsupported, field: "datacontenttype"},
		{name: "ce data array", value: ce(`,"data":[1]`), reason: ReasonWrongType, field: "data"},
		{name: "ce bad time", value: `{"specversion":"1.0","id":"c1","type":"t","time":"now","leadid":"k"}`, reason: ReasonBadTime, field: "time"},
		{name: "ce no id", value: `{"specversion":"1.0","type":"t","time":"2024-01-01T00:00:00Z","leadid":"k"}`, reason: ReasonMissingField, field: "id"},
		{name: "ce data lead_id number", value: ce(`,"data":{"lead_id":1}`), reason: ReasonWrongType, field: "data.lead_id"},
		{name: "ce forced, no specversion", format: FormatCloudEvents, value: good("", ""), reason: ReasonMissingField, field: "specversion"},
		{name: "ce binary bad header utf8", value: `{}`, headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("\xff")},
		}, reason: ReasonInvalidUTF8, field: "ce_id"},
		{name: "ce binary data not object", value: `"x"`, headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("i")},
		}, reason: ReasonWrongType},
		{name: "ce binary bad time", value: ``, headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("i")}, {Key: "ce_type", Value: []byte("t")},
			{Key: "ce_time", Value: []byte("2024-01-01T00:00:00.Z")}, {Key: "ce_leadid", Value: []byte("k")},
		}, reason: ReasonBadTime, field: "ce_time"},
	}
	seen := map[Reason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			key := tt.key
			switch key {
			case "":
				key = "k"
			case "-":
				key = ""
			}
			var tp scorer.Touchpoint
			err = d.Decode([]byte(key), []byte(tt.value), tt.headers, &tp)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *DecodeError", err, err)
			}
			if de.Reason != tt.reason || de.Field != tt.field {
				t.Fatalf("got %v, want reason %s field %q", err, tt.reason, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "ingest: "+string(tt.reason)) {
				t.Errorf("Error() = %q", err.Error())
			}
			seen[de.Reason] = true
		})
	}
	for _, r := range Reasons() {
		if !seen[r] && r != ReasonTooLate && r != ReasonFuture {
			t.Errorf("no test for reason %s", r)
		}
	}
}

func TestDecodeGoodVariants(t *testing.T) {
	tests := []struct {
		name  string
		value string
		check func(tp *scorer.Touchpoint) bool
	}{
		{"epoch zero", good("occurred_at", "0"), func(tp *scorer.Touchpoint) bool { return tp.OccurredAt == 0 }},
		{"max time", good("occurred_at", `"9999-12-31T23:59:59.999999999Z"`), func(tp *scorer.Touchpoint) bool { return tp.OccurredAt == maxEventMillis }},
		{"negative offset crossing midnight", good("occurred_at", `"2024-01-01T23:30:00-01:00"`), func(tp *scorer.Touchpoint) bool { return tp.OccurredAt == 1704155400000 }},
		{"leap day", good("occurred_at", `"2000-02-29T00:00:00Z"`), func(tp *scorer.Touchpoint) bool { return tp.OccurredAt == 951782400000 }},
		{"one fraction digit", good("occurred_at", `"1970-01-01T00:00:00.5Z"`), func(tp *scorer.Touchpoint) bool { return tp.OccurredAt == 500 }},
		{"anonymous only", add(good("lead_id", ""), `"anonymous_id":"k"`), func(tp *scorer.Touchpoint) bool { return tp.AnonymousID == "k" && tp.LeadID == "" }},
		{"escaped top-level key", add(good("lead_id", ""), `"lead\u005fid":"\u006b"`), func(tp *scorer.Touchpoint) bool { return tp.LeadID == "k" }},
		{"null optional", good("channel", "null"), func(tp *scorer.Touchpoint) bool { return tp.Channel == "" }},
		{"null properties", good("properties", "null"), func(tp *scorer.Touchpoint) bool { return tp.RawProperties == nil && len(tp.Props) == 0 }},
		{"deep 32 is fine", good("properties", `{"a":`+strings.Repeat("[", 30)+strings.Repeat("]", 30)+`,"b":1}`), func(tp *scorer.Touchpoint) bool { v, ok := tp.Prop("b"); return ok && v == "1" }},
		{"many properties", good("properties", manyProps(100)), func(tp *scorer.Touchpoint) bool {
			v, ok := tp.Prop("p99")
			return len(tp.Props) == 100 && ok && v == "99"
		}},
		{"a later non-scalar duplicate removes a property", good("properties", `{"a":"1","b":"2","a":{"x":1},"c":true,"b":null,"a":[2]}`), func(tp *scorer.Touchpoint) bool {
			_, a := tp.Prop("a")
			_, b := tp.Prop("b")
			c, _ := tp.Prop("c")
			return len(tp.Props) == 1 && !a && !b && c == "true"
		}},
		{"a property removed, then set again", good("properties", `{"a":"1","b":"2","a":{},"a":3}`), func(tp *scorer.Touchpoint) bool {
			a, _ := tp.Prop("a")
			b, _ := tp.Prop("b")
			return len(tp.Props) == 2 && a == "3" && b == "2"
		}},
		{"many properties, some removed", good("properties", add(manyProps(100), `"p7":{},"p50":[]`)), func(tp *scorer.Touchpoint) bool {
			_, p7 := tp.Prop("p7")
			_, p50 := tp.Prop("p50")
			v, ok := tp.Prop("p99")
			return len(tp.Props) == 98 && !p7 && !p50 && ok && v == "99"
		}},
	}
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tp scorer.Touchpoint
			if err := d.Decode([]byte("k"), []byte(tt.value), nil, &tp); err != nil {
				t.Fatalf("%s: %v", tt.value, err)
			}
			checkInvariants(t, &tp)
			if !tt.check(&tp) {
				t.Fatalf("unexpected %+v", tp)
			}
		})
	}
}

// add appends members to a JSON object.
func add(obj, members string) string {
	return obj[:len(obj)-1] + "," + members + "}"
}

// manyProps is an object with n members and duplicates of each, the
// duplicates last and winning, to exercise the map path.
func manyProps(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		b.WriteString(`"p` + itoa(i) + `":"x",`)
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"p` + itoa(i) + `":` + itoa(i))
	}
	b.WriteByte('}')
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestDecodeReuse(t *testing.T) {
	// A decoder and a touchpoint reused across records must not leak
	// fields from one record into the next.
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var tp scorer.Touchpoint
	if err := d.Decode([]byte("crm-0012345"), []byte(typicalJSON), nil, &tp); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte("k"), []byte(good("properties", "")), nil, &tp); err != nil {
		t.Fatal(err)
	}
	if tp.Channel != "" || tp.AccountID != "" || len(tp.Props) != 0 || len(tp.Traits) != 0 || tp.RawProperties != nil {
		t.Fatalf("fields leaked from the previous record: %+v", tp)
	}
	// A huge record's buffers are not kept for the next records.
	// (the last member removes p0, which grows the dead marks)
	// (and a top-level key with escapes, decoded into the key buffer)
	big := good("properties", `{"big":"`+strings.Repeat(`\n`, 1<<16)+`",`+add(manyProps(20000), `"p0":[0]`)[1:])
	big = `{"x` + strings.Repeat(`\n`, 1<<15) + `":0,` + big[1:]
	if err := d.Decode([]byte("k"), []byte(big), nil, &tp); err != nil {
		t.Fatal(err)
	}
	if cap(d.sc.tab) <= maxKeptMembers || cap(d.buf) <= maxKeptBuf || cap(d.dead) <= maxKeptMembers ||
		cap(d.sc.kbuf) <= maxKeptBuf || cap(tp.Props) <= 256 {
		t.Fatalf("the huge record did not grow the buffers: tab %d, buf %d, dead %d, kbuf %d, props %d",
			cap(d.sc.tab), cap(d.buf), cap(d.dead), cap(d.sc.kbuf), cap(tp.Props))
	}
	if err := d.Decode([]byte("crm-0012345"), []byte(typicalJSON), nil, &tp); err != nil {
		t.Fatal(err)
	}
	if cap(d.sc.tab) > maxKeptMembers || cap(d.buf) > maxKeptBuf || cap(d.dead) > maxKeptMembers ||
		cap(d.sc.kbuf) > maxKeptBuf || cap(tp.Props) > 256 {
		t.Errorf("buffers kept after a huge record: tab %d, buf %d, dead %d, kbuf %d, props %d (touchpoint: scorer's maxKeptAttrs, 256)",
			cap(d.sc.tab), cap(d.buf), cap(d.dead), cap(d.sc.kbuf), cap(tp.Props))
	}
	if err := d.Decode([]byte("k"), []byte("{"), nil, &tp); err == nil {
		t.Fatal("want an error")
	}
	if tp.EventID != "" || tp.Type != "" {
		t.Fatalf("failed decode left fields set: %+v", tp)
	}
}

func TestDecodeAllocs(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
	}{
		{"json", "crm-0012345", typicalJSON},
		{"segment", "crm-0012345", typicalSegment},
		{"cloudevents", "crm-0012345", typicalCloudEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{PropertyKeys: []string{"url", "path"}})
			if err != nil {
				t.Fatal(err)
			}
			var tp scorer.Touchpoint
			k, v := []byte(tc.key), []byte(tc.value)
			allocs := testing.AllocsPerRun(100, func() {
				if err := d.Decode(k, v, nil, &tp); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per record, want 0", allocs)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   DecoderConfig
		field string
	}{
		{DecoderConfig{}, ""},
		{DecoderConfig{Format: 9}, "Format"},
		{DecoderConfig{MaxValueBytes: -1}, "MaxValueBytes"},
		{DecoderConfig{MaxValueBytes: 2 << 30}, "MaxValueBytes"},
		{DecoderConfig{MaxDepth: -1}, "MaxDepth"},
		{DecoderConfig{MaxDepth: 10001}, "MaxDepth"},
		{DecoderConfig{PropertyKeys: []string{"ok", "\xff"}}, "PropertyKeys[1]"},
	} {
		err := tc.cfg.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "DecoderConfig."+tc.field) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.cfg, err, tc.field)
		}
		if _, err := NewDecoder(tc.cfg); err == nil {
			t.Errorf("NewDecoder(%+v) accepted", tc.cfg)
		}
	}
	// Limits apply: a small MaxValueBytes and MaxDepth.
	d, err := NewDecoder(DecoderConfig{MaxValueBytes: 10, MaxDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	var tp scorer.Touchpoint
	if r, _ := ReasonOf(d.Decode([]byte("k"), []byte(good("", "")), nil, &tp)); r != ReasonOversized {
		t.Errorf("MaxValueBytes 10: got %s", r)
	}
	d, _ = NewDecoder(DecoderConfig{MaxDepth: 1})
	if r, _ := ReasonOf(d.Decode([]byte("k"), []byte(good("", "")), nil, &tp)); r != ReasonTooDeep {
		t.Errorf("MaxDepth 1: got %s", r)
	}
	// Many PropertyKeys use the map lookup.
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "url"}
	d, _ = NewDecoder(DecoderConfig{PropertyKeys: keys})
	if err := d.Decode([]byte("k"), []byte(good("properties", `{"url":"/x","z":1}`)), nil, &tp); err != nil {
		t.Fatal(err)
	}
	if len(tp.Props) != 1 || tp.Props[0] != (scorer.Attr{Key: "url", Value: "/x"}) {
		t.Errorf("Props = %v", tp.Props)
	}
}

func TestFormat(t *testing.T) {
	for _, f := range []Format{FormatAuto, FormatJSON, FormatSegment, FormatCloudEvents} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFormat("avro"); err == nil {
		t.Error("ParseFormat(avro) accepted")
	}
	if s := Format(7).String(); s != "Format(7)" {
		t.Errorf("Format(7).String() = %q", s)
	}
}

func TestReasons(t *testing.T) {
	rs := Reasons()
	if len(rs) != 13 {
		t.Fatalf("%d reasons", len(rs))
	}
	seen := map[Reason]bool{}
	for _, r := range rs {
		if seen[r] || r == "" || strings.ToLower(string(r)) != string(r) {
			t.Errorf("bad or duplicate reason %q", r)
		}
		seen[r] = true
	}
	rs[0] = "changed"
	if Reasons()[0] != ReasonOversized {
		t.Error("Reasons returns shared storage")
	}
	err := &DecodeError{Reason: ReasonWrongType, Field: "event_id", Detail: "want string"}
	if got, want := err.Error(), `ingest: wrong_type: field "event_id": want string`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if r, ok := ReasonOf(errors.Join(errors.New("x"), err)); !ok || r != ReasonWrongType {
		t.Errorf("ReasonOf = %v, %v", r, ok)
	}
}

// TestDecodeFitTraitLimit: a trait a fit rule reads is kept in the lead's
// state, so its value is bounded (MaxFitTraitBytes) in every format; other
// traits are not.
func TestDecodeFitTraitLimit(t *testing.T) {
	long := func(n int) string { return `"` + strings.Repeat("v", n) + `"` }
	traits := func(title, bio int) string {
		return `{"title":` + long(title) + `,"bio":` + long(bio) + `}`
	}
	tests := []struct {
		format Format
		value  func(traits string) string
		field  string
	}{
		{FormatJSON, func(tr string) string { return good("traits", tr) }, "traits.title"},
		{FormatSegment, func(tr string) string {
			return `{"type":"identify","messageId":"m","userId":"k","timestamp":"2024-01-01T00:00:00Z","traits":` + tr + `}`
		}, "traits.title"},
		{FormatCloudEvents, func(tr string) string {
			return `{"specversion":"1.0","id":"c1","source":"s","type":"identify","time":"2024-01-01T00:00:00Z","leadid":"k","data":{"traits":` + tr + `}}`
		}, "data.traits.title"},
	}
	for _, tt := range tests {
		d, err := NewDecoder(DecoderConfig{Format: tt.format, FitTraits: []string{"company_size", "title"}})
		if err != nil {
			t.Fatal(err)
		}
		var tp scorer.Touchpoint
		if err := d.Decode([]byte("k"), []byte(tt.value(traits(MaxFitTraitBytes, 100_000))), nil, &tp); err != nil {
			t.Errorf("%s: title at the limit, a long trait no fit rule reads: %v", tt.format, err)
		}
		err = d.Decode([]byte("k"), []byte(tt.value(traits(MaxFitTraitBytes+1, 10))), nil, &tp)
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason != ReasonFieldTooLong || de.Field != tt.field {
			t.Errorf("%s: title one byte over the limit: %v, want field_too_long for %s", tt.format, err, tt.field)
		}
	}
}
