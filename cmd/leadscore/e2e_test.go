package main

// End-to-end tests of the leadscore binary with clients that are not Go:
// kcat (librdkafka) produces and consumes, Python checks the MQL events
// against the JSON schema (bench/interop), the independent Python
// reference (bench/reference/scoring_ref.py) says what the MQL events and
// dead letters must be, and pyarrow, DuckDB and pandas read the archive
// (bench/pyread/check_archive.py).
//
// They need kcat and the Python packages of deploy/requirements-test.txt;
// without them they skip, except with CI=true, where they fail.
// TestRunInteropRealKafka also needs a real Kafka broker (internal/kafkatest).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/internal/kafkatest"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leadscore-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	e2eBinDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// pyE2E are the Python modules both tests use.
var pyE2E = []string{"yaml", "jsonschema", "pyarrow", "duckdb", "pandas"}

// TestDevKcatMatchesReference runs `leadscore dev` (embedded broker),
// produces the sample stream and hostile records with kcat, and checks
// the MQL events, the dead letters, the metrics, a clean SIGTERM exit and
// the Parquet archive against the reference implementation.
func TestDevKcatMatchesReference(t *testing.T) {
	requireTools(t, []string{"kcat", "go"}, pyE2E)
	e := newE2E(t)

	tmp := t.TempDir()
	listen, maddr := freeAddr(t), freeAddr(t)
	archiveDir := filepath.Join(tmp, "archive")
	const input, mqlTopic, dlqTopic = "leadscore.touchpoints", "leadscore.mql", "leadscore.dlq"
	p := e.startLeadscore("dev", "--generate=false", "--listen", listen,
		"--data-dir", filepath.Join(tmp, "kafka"), "--archive-dir", archiveDir, "--metrics-addr", maddr,
		"--archive-flush-idle", "2s", "--archive-roll-interval", "1m", "--summary-every", "0")
	e.waitReady(p, "http://"+maddr+"/readyz", 30*time.Second)
	e.phase("start")

	now := time.Now()
	batches := testStream(t, readSample(t, e.path("bench/testdata/sample.jsonl")), now)
	ex := e.expect(batches, now)
	if len(ex.mqls) == 0 || ex.duplicates == 0 || len(ex.dead) < 6 {
		t.Fatalf("the test stream exercises too little: %d MQLs, %d duplicates, %d dead letters expected",
			len(ex.mqls), ex.duplicates, len(ex.dead))
	}
	e.phase("reference")

	n := e.produce(listen, input, batches)
	e.phase("produce")

	metricsURL := "http://" + maddr + "/metrics"
	m := e.waitMetrics(p, metricsURL, 30*time.Second, "every record consumed",
		[]string{"leadscore_touchpoints_consumed_total"}, func(m metrics) bool {
			return m.sums["leadscore_touchpoints_consumed_total"] >= float64(n)
		})
	checkCounts(t, m, n, ex)
	e.phase("score")

	e.checkMQLWithKcat(listen, mqlTopic, ex.mqls)
	checkDLQ(t, e.consumeKcat(listen, dlqTopic), input, ex.dead)
	e.phase("consume")

	e.waitArchive(p, metricsURL, ex.scored, len(ex.mqls), len(ex.dead))
	e.phase("archive")

	code, took := p.terminate(30 * time.Second)
	if code != 0 {
		t.Errorf("leadscore dev exited with %d, %v after SIGTERM (want 0 within 30s)", code, took)
	}
	e.phase("shutdown")

	e.checkArchive(archiveDir, ex.scored, len(ex.mqls), len(ex.dead), ex.dates)
	e.phase("archive-check")
}

// TestRunInteropRealKafka runs `leadscore run` against a real Apache
// Kafka: kcat produces, a confluent-kafka (librdkafka) read_committed
// consumer reads the MQL events, then `leadscore gen` produces 2000
// synthetic records that must all be consumed, and the archive must agree
// with the metrics.
func TestRunInteropRealKafka(t *testing.T) {
	requireTools(t, []string{"kcat", "go"}, append([]string{"confluent_kafka"}, pyE2E...))
	cluster := kafkatest.Broker(t)
	e := newE2E(t)

	brokers := strings.Join(cluster.Brokers, ",")
	pl := newPipeline(t, cluster.Admin(t), "leadscore-e2e-", "interop")
	topics, groups := pl.topics, pl.groups

	tmp := t.TempDir()
	maddr := freeAddr(t)
	archiveDir := filepath.Join(tmp, "archive")
	p := e.startLeadscore(append([]string{"run", "--brokers", brokers}, append(pl.runArgs(archiveDir, maddr),
		"--archive-flush-idle", "2s", "--archive-roll-interval", "1m")...)...)
	e.waitReady(p, "http://"+maddr+"/readyz", 45*time.Second)
	e.phase("start")

	now := time.Now()
	batches := testStream(t, readSample(t, e.path("bench/testdata/sample.jsonl")), now)
	ex := e.expect(batches, now)
	e.phase("reference")

	n := e.produce(brokers, topics["touchpoints"], batches)
	e.phase("produce")

	stdout, stderr, err := e.runErr(60*time.Second, nil, "python3", e.path("bench/interop/consume_mql.py"),
		"--brokers", brokers, "--topic", topics["mql"], "--count", strconv.Itoa(len(ex.mqls)),
		"--schema", e.path("sinks/mqlout/mql.schema.json"), "--timeout", "30", "--linger", "2", "--group", groups[2])
	if err != nil {
		t.Errorf("consume_mql.py: %v\n%s", err, tail(stderr, 4000))
	}
	compareMQL(t, parseChecked(t, stdout), ex.mqls)
	checkDLQ(t, e.consumeKcat(brokers, topics["dlq"]), topics["touchpoints"], ex.dead)
	e.phase("consume")

	metricsURL := "http://" + maddr + "/metrics"
	consumed := func(want int) func(metrics) bool {
		return func(m metrics) bool { return m.sums["leadscore_touchpoints_consumed_total"] >= float64(want) }
	}
	watch := []string{"leadscore_touchpoints_consumed_total"}
	m := e.waitMetrics(p, metricsURL, 30*time.Second, "every record consumed", watch, consumed(n))
	checkCounts(t, m, n, ex)

	const genCount = 2000
	e.run(60*time.Second, nil, e.bin, "gen", "--brokers", brokers, "--topic", topics["touchpoints"],
		"--count", strconv.Itoa(genCount), "--live=false", "--quiet")
	e.phase("gen")
	m = e.waitMetrics(p, metricsURL, 30*time.Second, fmt.Sprintf("the %d generated records consumed", genCount),
		watch, consumed(n+genCount))
	if got := m.sums["leadscore_touchpoints_consumed_total"]; got != float64(n+genCount) {
		t.Errorf("leadscore_touchpoints_consumed_total = %g, want %d", got, n+genCount)
	}
	scored := int(m.sums["leadscore_touchpoints_scored_total"])
	dup := int(m.sums["leadscore_touchpoints_duplicate_total"])
	dead := int(m.sums["leadscore_touchpoints_dead_lettered_total"])
	mqls := int(m.sums["leadscore_mql_emitted_total"])
	if scored+dup+dead != n+genCount {
		t.Errorf("scored %d + duplicate %d + dead-lettered %d = %d, want every consumed record (%d) in one of them",
			scored, dup, dead, scored+dup+dead, n+genCount)
	}
	e.phase("score-gen")

	e.waitArchive(p, metricsURL, scored, mqls, dead)
	e.phase("archive")
	code, took := p.terminate(30 * time.Second)
	if code != 0 {
		t.Errorf("leadscore run exited with %d, %v after SIGTERM (want 0 within 30s)", code, took)
	}
	e.phase("shutdown")
	e.checkArchive(archiveDir, scored, mqls, dead, nil)
	e.phase("archive-check")
}

// checkCounts compares the scorer's counters with the expectation.
func checkCounts(t *testing.T, m metrics, produced int, ex expectation) {
	t.Helper()
	byReason := map[string]int{}
	for _, d := range ex.dead {
		byReason[d.reason]++
	}
	checks := []struct {
		series string
		want   int
	}{
		{"leadscore_touchpoints_consumed_total", produced},
		{"leadscore_touchpoints_scored_total", ex.scored},
		{"leadscore_touchpoints_duplicate_total", ex.duplicates},
		{"leadscore_mql_emitted_total", len(ex.mqls)},
	}
	for reason, n := range byReason {
		checks = append(checks, struct {
			series string
			want   int
		}{`leadscore_touchpoints_dead_lettered_total{reason="` + reason + `"}`, n})
	}
	for _, c := range checks {
		got, ok := m.series[c.series]
		if !ok || got != float64(c.want) {
			t.Errorf("metric %s = %g (exposed: %v), want %d", c.series, got, ok, c.want)
		}
	}
	if got := m.sums["leadscore_touchpoints_dead_lettered_total"]; got != float64(len(ex.dead)) {
		t.Errorf("leadscore_touchpoints_dead_lettered_total sums to %g, want %d", got, len(ex.dead))
	}
}

// checkMQLWithKcat reads the MQL topic with kcat (read_committed),
// validates it with bench/interop/mqlcheck.py and compares it with the
// reference.
func (e *e2e) checkMQLWithKcat(brokers, topic string, want []refMQL) {
	e.t.Helper()
	raw := e.consumeKcat(brokers, topic)
	stdout, stderr, err := e.runErr(30*time.Second, bytes.NewReader(raw), "python3", e.path("bench/interop/mqlcheck.py"),
		"--schema", e.path("sinks/mqlout/mql.schema.json"))
	if err != nil {
		e.t.Errorf("mqlcheck.py: %v\n%s", err, tail(stderr, 4000))
	}
	compareMQL(e.t, parseChecked(e.t, stdout), want)
}

// waitArchive waits until the archiver has made visible as many rows of
// each table as the scorer produced.
func (e *e2e) waitArchive(p *proc, url string, touchpoints, mqls, dead int) {
	e.t.Helper()
	series := func(table string) string { return `leadscore_archive_rows_written_total{table="` + table + `"}` }
	e.waitMetrics(p, url, 30*time.Second,
		fmt.Sprintf("archive rows: %d touchpoints, %d mql, %d dead_letters", touchpoints, mqls, dead),
		[]string{series("touchpoints"), series("mql"), series("dead_letters")},
		func(m metrics) bool {
			return m.series[series("touchpoints")] >= float64(touchpoints) &&
				m.series[series("mql")] >= float64(mqls) &&
				m.series[series("dead_letters")] >= float64(dead)
		})
}
