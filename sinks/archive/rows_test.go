package archive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/leadscore/leadscore/scorer"
)

var t0 = time.Date(2026, 3, 14, 23, 59, 58, 123_000_000, time.UTC)

func sampleTouchpoint(i int) TouchpointRow {
	r := TouchpointRow{
		EventID:         fmt.Sprintf("ev-%06d", i),
		LeadID:          fmt.Sprintf("lead-%d", i%97),
		Type:            "page_view",
		Channel:         "web",
		OccurredAt:      t0.Add(time.Duration(i) * time.Second),
		Properties:      `{"path":"/pricing","n":1.5}`,
		Rule:            "pricing-view",
		Points:          12.5,
		Engagement:      40.25 + float64(i),
		Fit:             0.8,
		ModelName:       "default",
		ModelVersion:    "3",
		SourceTopic:     "leadscore.touchpoints",
		SourcePartition: int32(i % 3),
		SourceOffset:    int64(i),
	}
	if i%5 == 0 {
		r.AccountID = "acct-1"
		r.Traits = `{"title":"CTO","employees":250}`
		r.Campaign = "spring"
	}
	if i%7 == 0 {
		r.TriggeredMQL = true
		r.MQLID = fmt.Sprintf("mql-%d", i)
	}
	return r
}

func sampleMQL(i int) scorer.MQL {
	fitMin := 0.5
	m := scorer.MQL{
		MQLID:          fmt.Sprintf("mql-%d", i),
		LeadID:         fmt.Sprintf("lead-%d", i),
		AccountID:      "acct-1",
		Sequence:       1 + i%2,
		QualifiedAt:    t0.Add(time.Duration(i) * time.Hour),
		TriggerEventID: fmt.Sprintf("ev-%06d", i),
		Score:          101.5,
		Fit:            0.9,
		Thresholds:     scorer.MQLThresholds{MQL: 100, Rearm: 50, CooldownSeconds: 86400},
		Model:          scorer.ModelRef{Name: "default", Version: "3"},
		Contributors: []scorer.Contributor{
			{Type: "demo_request", Channel: "web", Points: 60},
			{Type: "email_click", Campaign: "spring", Points: 41.5},
		},
		EmittedAt: t0.Add(time.Duration(i)*time.Hour + time.Second),
	}
	if i%2 == 0 {
		m.Thresholds.FitMin = &fitMin
	}
	return m
}

func TestTouchpointJSONRoundTrip(t *testing.T) {
	tests := []TouchpointRow{
		{},
		sampleTouchpoint(0),
		sampleTouchpoint(3),
		{
			EventID:      "quote\" back\\slash \n\t\r\x00\x1f </script> \u2028\u2029 é 😀",
			LeadID:       "l",
			OccurredAt:   time.UnixMilli(-1).UTC(),
			Points:       1e-9,
			Engagement:   -3.5e22,
			Fit:          math.MaxFloat64,
			SourceOffset: math.MaxInt64,
		},
		{EventID: "e", OccurredAt: time.UnixMilli(0).UTC(), Properties: "{}", Traits: `{"a":[1,{"b":null}]}`, Points: -0.0001},
	}
	for i, in := range tests {
		b := in.AppendJSON(nil)
		if !json.Valid(b) {
			t.Fatalf("%d: invalid JSON: %s", i, b)
		}
		var out TouchpointRow
		if err := out.UnmarshalJSON(b); err != nil {
			t.Fatalf("%d: %v\n%s", i, err, b)
		}
		in.OccurredAt = in.OccurredAt.Truncate(time.Millisecond).UTC()
		if in.OccurredAt.IsZero() {
			in.OccurredAt = time.UnixMilli(in.OccurredAt.UnixMilli()).UTC()
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%d: round trip\n in: %+v\nout: %+v\njson: %s", i, in, out, b)
		}
	}
}

// TestAppendJSONMatchesEncodingJSON checks string and number formatting
// against encoding/json.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x01\x1f\x7f", "\u2028x\u2029", "bad\xffutf8", "\xe0\xb0", "日本"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s: %v", s, got, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s))
		}
		if back != want {
			t.Errorf("%q: decoded %q", s, back)
		}
	}
	for _, f := range []float64{0, 1, -1, 0.1, 1e-7, 123456789, 1e21, 1e20, 5e-324, math.MaxFloat64, -2.5e-8} {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: got %s want %s", f, got, want)
		}
	}
	if got := appendFloat(nil, math.NaN()); string(got) != "null" {
		t.Errorf("NaN: got %s", got)
	}
}

func TestUnmarshalJSONErrors(t *testing.T) {
	for _, in := range []string{``, `not json`, `{"event_id":"e"}`, `[]`, `{"occurred_at":"x"}`} {
		var r TouchpointRow
		if err := r.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzTouchpointJSON(f *testing.F) {
	f.Add("ev", "lead", "", "page_view", "web", int64(1700000000000), `{"a":1}`, "r", 1.5, 2.5, true, int64(7))
	f.Add("\x00\"", "", "\u2028", "", "", int64(-5), "", "", -1e-300, 1e300, false, int64(0))
	f.Fuzz(func(t *testing.T, id, lead, anon, typ, ch string, at int64, props, rule string, pts, eng float64, trig bool, off int64) {
		if math.IsNaN(pts) || math.IsInf(pts, 0) || math.IsNaN(eng) || math.IsInf(eng, 0) {
			t.Skip()
		}
		if props != "" && (!json.Valid([]byte(props)) || props[0] != '{') {
			props = ""
		}
		in := TouchpointRow{EventID: id, LeadID: lead, AnonymousID: anon, Type: typ, Channel: ch,
			OccurredAt: time.UnixMilli(at).UTC(), Properties: props, Rule: rule, Points: pts,
			Engagement: eng, TriggeredMQL: trig, SourceOffset: off}
		b := in.AppendJSON(nil)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %q", b)
		}
		var out TouchpointRow
		if err := out.UnmarshalJSON(b); err != nil {
			t.Fatalf("%v: %q", err, b)
		}
		for _, s := range []*string{&in.EventID, &in.LeadID, &in.AnonymousID, &in.Type, &in.Channel, &in.Rule} {
			*s = string([]rune(*s)) // U+FFFD for each invalid byte, as encoding/json

		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip\n in: %+v\nout: %+v", in, out)
		}
	})
}

func writeParquet[T any](t testing.TB, path string, rows []T) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, parquet.Compression(&parquet.Zstd))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readParquet[T any](t testing.TB, path string) []T {
	t.Helper()
	rows, err := parquet.ReadFile[T](path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return rows
}

func utcTimes(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			utcTimes(v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				utcTimes(v.Index(i))
			}
		}
	case reflect.Struct:
		if tm, ok := v.Interface().(time.Time); ok {
			if !tm.IsZero() {
				v.Set(reflect.ValueOf(tm.UTC()))
			}
			return
		}
		for i := range v.NumField() {
			utcTimes(v.Field(i))
		}
	}
}

func parquetRoundTrip[T any](t *testing.T, rows []T) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.parquet")
	writeParquet(t, path, rows)
	got := readParquet[T](t, path)
	utcTimes(reflect.ValueOf(got))
	if !reflect.DeepEqual(rows, got) {
		t.Errorf("parquet round trip of %T\nwant %+v\n got %+v", rows[0], rows, got)
	}
}

func TestParquetRoundTrip(t *testing.T) {
	var tps []TouchpointRow
	for i := range 20 {
		tps = append(tps, sampleTouchpoint(i))
	}
	parquetRoundTrip(t, tps)

	var mqls []MQLRow
	for i := range 4 {
		m := sampleMQL(i)
		mqls = append(mqls, MQLRowFrom(&m))
	}
	mqls[3].Contributors = []ContributorRow{} // read back as empty, not nil
	mqls[3].EmittedAt = time.Time{}
	parquetRoundTrip(t, mqls)

	p, o := int32(2), int64(99)
	dls := []DeadLetterRow{
		{Key: "lead-1", Value: []byte(`{"bad":`), Reason: "decode", Detail: "unexpected EOF",
			SourceTopic: "leadscore.touchpoints", SourcePartition: &p, SourceOffset: &o,
			DeadLetteredAt: t0, Headers: `[{"key":"h","value":"v"}]`},
		{Value: []byte{0, 1, 2}, Reason: "too_late", DeadLetteredAt: t0.Add(time.Hour)},
	}
	parquetRoundTrip(t, dls)
}

func TestParquetSchema(t *testing.T) {
	s := parquet.SchemaOf(TouchpointRow{}).String()
	for _, want := range []string{
		"int64 occurred_at (TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS))",
		"optional binary properties (STRING)",
		"required binary event_id (STRING)",
		"optional binary campaign (STRING)",
	} {
		if !bytes.Contains([]byte(s), []byte(want)) {
			t.Errorf("touchpoints schema lacks %q:\n%s", want, s)
		}
	}
	s = parquet.SchemaOf(MQLRow{}).String()
	if !bytes.Contains([]byte(s), []byte("contributors (LIST)")) {
		t.Errorf("mql schema: contributors not a LIST:\n%s", s)
	}
}

func TestMQLRowFrom(t *testing.T) {
	m := sampleMQL(0)
	m.QualifiedAt = m.QualifiedAt.Add(456 * time.Microsecond).In(time.FixedZone("X", 3600))
	r := MQLRowFrom(&m)
	if r.QualifiedAt.Location() != time.UTC || r.QualifiedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("qualified_at not truncated UTC: %v", r.QualifiedAt)
	}
	if r.ThresholdFitMin == nil || *r.ThresholdFitMin != 0.5 || r.ThresholdFitMin == m.Thresholds.FitMin {
		t.Errorf("fit_min not copied: %v", r.ThresholdFitMin)
	}
	if len(r.Contributors) != 2 || r.Contributors[1].Campaign != "spring" || r.Sequence != 1 {
		t.Errorf("bad row %+v", r)
	}
}

func TestParseFileName(t *testing.T) {
	name := FileName("leadscore.scored", 12, 345)
	if name != "leadscore.scored+12+00000000000000000345.parquet" {
		t.Fatalf("FileName: %s", name)
	}
	for _, tc := range []struct {
		name  string
		ok    bool
		tmp   bool
		topic string
		part  int32
		first int64
	}{
		{name, true, false, "leadscore.scored", 12, 345},
		{"." + name + ".tmp", true, true, "leadscore.scored", 12, 345},
		{"a+b+0+00000000000000000001.parquet", true, false, "a+b", 0, 1},
		{"x+1+345.parquet", false, false, "", 0, 0},
		{"+1+00000000000000000001.parquet", false, false, "", 0, 0},
		{"x+1+00000000000000000001.csv", false, false, "", 0, 0},
		{"x+z+00000000000000000001.parquet", false, false, "", 0, 0},
	} {
		topic, part, first, tmp, ok := parseFileName(tc.name)
		if ok != tc.ok || tmp != tc.tmp || topic != tc.topic || part != tc.part || first != tc.first {
			t.Errorf("%s: got %q %d %d %v %v", tc.name, topic, part, first, tmp, ok)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sampleTouchpoint(5)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func TestAppendJSONAllocs(t *testing.T) {
	r := sampleTouchpoint(5)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = r.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times", n)
	}
}

func BenchmarkWriteSegment(b *testing.B) {
	const n = 10_000
	rows := make([]TouchpointRow, n)
	for i := range rows {
		rows[i] = sampleTouchpoint(i)
	}
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f, err := createParquetFile[TouchpointRow](TableTouchpoints, dir, FileName("t", 0, int64(i)), n)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			if err := f.add(r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := f.finish(); err != nil {
			b.Fatal(err)
		}
		f.abort()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
