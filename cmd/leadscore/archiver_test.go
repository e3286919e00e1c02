package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/internal/kafkatest"
)

// TestArchiverAlone runs the scorer and the archiver as two deployments:
// `run` without --archive-dir, and `run --score=false --archive-dir`. The
// archiver, started first, waits for the topics without creating any
// (the scorer creates them, with the input's partition count); then it
// archives every scored touchpoint, MQL event and
// dead letter the scorer produced, once, and scores nothing itself (it has
// none of the scorer's metrics).
func TestArchiverAlone(t *testing.T) {
	cluster := kafkatest.Fake(t)
	e := newE2E(t)
	adm := cluster.Admin(t)
	pl := newPipeline(t, adm, "leadscore-split-")
	brokers := strings.Join(cluster.Brokers, ",")

	_, stderr, err := e.runErr(30*time.Second, nil, e.bin, "run", "--brokers", brokers, "--score=false", "--archive-dir", "")
	if err == nil || !strings.Contains(string(stderr), "--score=false runs the archiver alone: it needs --archive-dir") {
		t.Errorf("run --score=false without --archive-dir: %v, stderr:\n%s", err, tail(stderr, 2000))
	}

	// The archiver first: it waits for the topics and creates none.
	saddr, aaddr := freeAddr(t), freeAddr(t)
	archiveDir := filepath.Join(t.TempDir(), "archive")
	archiver := e.startLeadscore(append([]string{"run", "--brokers", brokers, "--score=false", "--archive-flush-idle", "1s"},
		pl.runArgs(archiveDir, aaddr)...)...)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(string(archiver.out.Bytes()), "archiver: waiting for topics to exist") {
		if time.Now().After(deadline) || archiver.exited() {
			t.Fatalf("the archiver alone did not say it waits for its topics:\n%s", tail(archiver.out.Bytes(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * topicPoll) // asked twice more
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range pl.topics {
		if details.Has(tp) {
			t.Errorf("topic %s exists before the scorer started: the archiver alone created it", tp)
		}
	}
	e.phase("archiver waiting")

	scorer := e.startLeadscore(append([]string{"run", "--brokers", brokers}, pl.runArgs("", saddr)...)...)
	e.waitReady(scorer, "http://"+saddr+"/readyz", 45*time.Second)
	e.waitReady(archiver, "http://"+aaddr+"/readyz", 45*time.Second)
	e.phase("both ready")

	const genCount = 2000
	e.run(60*time.Second, nil, e.bin, "gen", "--brokers", brokers, "--topic", pl.topics["touchpoints"],
		"--count", strconv.Itoa(genCount), "--live=false", "--quiet")
	m := e.waitAllScored(scorer, "http://"+saddr+"/metrics", genCount)
	scored := int(m.sums["leadscore_touchpoints_scored_total"])
	dead := int(m.sums["leadscore_touchpoints_dead_lettered_total"])
	mqls := int(m.sums["leadscore_mql_emitted_total"])
	e.phase("scored")

	e.waitArchive(archiver, "http://"+aaddr+"/metrics", scored, mqls, dead)
	am, err := scrape("http://" + aaddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"touchpoints": scored, "mql": mqls, "dead_letters": dead} {
		series := `leadscore_archive_rows_written_total{table="` + table + `"}`
		if got := am.series[series]; got != float64(want) {
			t.Errorf("%s = %g, want %d (what the scorer produced)", series, got, want)
		}
	}
	for name := range am.sums {
		if strings.HasPrefix(name, "leadscore_touchpoints_") || strings.HasPrefix(name, "leadscore_mql_") {
			t.Errorf("the archiver-only process exposes the scorer's metric %s", name)
		}
	}
	files, _ := filepath.Glob(filepath.Join(archiveDir, "*", "dt=*", "*.parquet"))
	if len(files) == 0 {
		t.Errorf("no Parquet files under %s", archiveDir)
	}
	e.phase("archived")

	for name, p := range map[string]*proc{"scorer": scorer, "archiver": archiver} {
		if code, took := p.terminate(30 * time.Second); code != 0 {
			t.Errorf("%s exited with %d, %v after SIGTERM (want 0 within 30s)", name, code, took)
		}
	}
}
