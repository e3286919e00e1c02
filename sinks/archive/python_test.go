package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestArchiveReadableByPython archives a few records of each table and
// runs bench/pyread/check_archive.py over the result: pyarrow, DuckDB and
// pandas must agree on rows and see typed timestamps and a dt partition.
func TestArchiveReadableByPython(t *testing.T) {
	if err := exec.Command("python3", "-c", "import pyarrow, duckdb, pandas").Run(); err != nil {
		t.Skip("python3 with pyarrow, duckdb and pandas not available")
	}
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "")
	day := time.Date(2026, 9, 30, 22, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, scoredRecord(int32(i%3), fmt.Sprintf("e%02d", i), day.Add(time.Duration(i)*10*time.Minute)))
	}
	for i := range 3 {
		m := sampleMQL(i)
		v, _ := json.Marshal(m)
		recs = append(recs, &kgo.Record{Topic: mqlTopic, Partition: int32(i), Key: []byte(m.LeadID), Value: v, Timestamp: day})
	}
	recs = append(recs, &kgo.Record{Topic: dlqTopic, Partition: 0, Value: []byte("x"), Timestamp: day,
		Headers: []kgo.RecordHeader{{Key: HeaderReason, Value: []byte("decode")}}})
	// A key that is not UTF-8 (in key_base64, not in the string column
	// DuckDB and pyarrow refuse), and a value of 5 MiB (no min/max in the
	// page headers and footer, which pyarrow refused over a few MiB).
	recs = append(recs, &kgo.Record{Topic: dlqTopic, Partition: 0, Key: []byte{0xff, 0xfe, 0xff, 0x00}, Value: []byte("y"),
		Timestamp: day, Headers: []kgo.RecordHeader{{Key: HeaderReason, Value: []byte("invalid_utf8")}}})
	// Alone in its partition, so alone in its file and page: the page's
	// min and max, written twice each (current and deprecated fields).
	recs = append(recs, &kgo.Record{Topic: dlqTopic, Partition: 1, Key: []byte("lead-big"), Value: []byte(strings.Repeat("v", 5<<20)),
		Timestamp: day, Headers: []kgo.RecordHeader{{Key: HeaderReason, Value: []byte("oversized")}}})
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop := start(t, newArchiver(t, testConfig(addrs, dir)))
	waitCommitted(t, addrs, lastOffsets(recs))
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("python3", filepath.Join("..", "..", "bench", "pyread", "check_archive.py"), dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check_archive.py: %v\n%s\n%s", err, stderr.String(), out)
	}
	var report map[string]struct {
		Rows          int               `json:"rows"`
		Columns       map[string]string `json:"columns"`
		DuckDBColumns map[string]string `json:"duckdb_columns"`
		PandasDtypes  map[string]string `json:"pandas_dtypes"`
		DT            []string          `json:"dt"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	tp := report[TableTouchpoints]
	if tp.Rows != 30 || report[TableMQL].Rows != 3 || report[TableDeadLetters].Rows != 3 {
		t.Errorf("rows: touchpoints %d, mql %d, dead_letters %d", tp.Rows, report[TableMQL].Rows, report[TableDeadLetters].Rows)
	}
	if got := tp.Columns["occurred_at"]; got != "timestamp[ms, tz=UTC]" {
		t.Errorf("pyarrow occurred_at: %s", got)
	}
	if got := tp.DuckDBColumns["occurred_at"]; got != "TIMESTAMP WITH TIME ZONE" {
		t.Errorf("duckdb occurred_at: %s", got)
	}
	if got := tp.PandasDtypes["occurred_at"]; !strings.HasPrefix(got, "datetime64[") {
		t.Errorf("pandas occurred_at: %s", got)
	}
	if _, ok := tp.Columns["dt"]; !ok {
		t.Errorf("dt is not a column: %v", tp.Columns)
	}
	if want := []string{"2026-09-30", "2026-10-01"}; !slices.Equal(tp.DT, want) {
		t.Errorf("dt values %v, want %v", tp.DT, want)
	}
	if got := report[TableMQL].Columns["contributors"]; !strings.HasPrefix(got, "list<element: struct<") {
		t.Errorf("pyarrow contributors: %s", got)
	}
	t.Logf("%s", out)
}
