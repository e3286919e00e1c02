package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestArchiverStalledOwnerFenced plays issue #4: archiver A owns a
// partition and stalls with records in hand, either before writing them
// ("append") or with a segment's files finished and about to be renamed
// ("rename"). Archiver B joins; A cannot take part in the rebalance, so
// the group drops it after the rebalance timeout and gives B every
// partition. B must wait for the partition's lock; A then wakes, renames
// its files, fails to commit (stale generation), learns it lost its
// partitions and releases the locks; only then does B clean up and
// archive the partition again. Every record must be in the archive
// exactly once.
//
// A's heartbeats go on in their own goroutine while its poll loop
// stalls, so here the rebalance timeout drops it; a whole-process stall
// (SIGSTOP, a VM freeze) is dropped by the session timeout instead, with
// the same effect on the partition.
//
// Without the locks, "append" archives records twice (A's late segments
// of 5 records next to B's of 8) and "rename" fails A (B deleted A's
// temporary file as uncommitted).
func TestArchiverStalledOwnerFenced(t *testing.T) {
	requireFencing(t)
	for _, point := range []string{"append", "rename"} {
		t.Run(point, func(t *testing.T) { testStalledOwner(t, point) })
	}
}

func testStalledOwner(t *testing.T, point string) {
	addrs := newCluster(t)
	dir := t.TempDir()
	prod := producer(t, addrs, "")
	at := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, scoredRecord(0, fmt.Sprintf("s%02d", i), at.Add(time.Duration(i)*time.Second)))
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tp := topicPartition{scoredTopic, 0}
	dtDir := filepath.Join(dir, TableTouchpoints, "dt=2026-10-05")
	firstTmp := filepath.Join(dtDir, "."+FileName(scoredTopic, 0, 0)+".tmp")

	cfg := testConfig(addrs, dir)
	cfg.Kafka = append(cfg.Kafka, kgo.RebalanceTimeout(2*time.Second))
	cfgA := cfg
	cfgA.RollRecords = 5
	cfgA.FlushIdle = time.Hour
	a := newArchiver(t, cfgA)
	stalled, resume := make(chan struct{}), make(chan struct{})
	var resumeOnce sync.Once
	wake := func() { resumeOnce.Do(func() { close(resume) }) }
	hit := false // Run's goroutine only
	a.stall = func(p, topic string, partition int32) {
		if p != point || topic != tp.topic || partition != tp.partition || hit {
			return
		}
		hit = true
		close(stalled)
		<-resume
	}
	stopA := start(t, a)
	t.Cleanup(wake) // runs before stopA's cleanup
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("A never reached the stall point")
	}
	if point == "rename" {
		if _, err := os.Stat(firstTmp); err != nil {
			t.Fatalf("A's finished segment: %v", err)
		}
	}

	cfgB := cfg
	cfgB.Registerer = prometheus.NewRegistry()
	b := newArchiver(t, cfgB)
	stopB := start(t, b)
	// B is assigned the partition once the group dropped A; it must then
	// wait for A's lock. (Without locks B archives the partition and
	// commits instead.)
	waited := waitFor(15*time.Second, func() bool {
		return testutil.ToFloat64(b.m.lockWaiting) >= 1 || committed(t, addrs)[tp] > 0
	}) && testutil.ToFloat64(b.m.lockWaiting) >= 1
	if !waited {
		t.Errorf("B did not wait for the partition lock held by the stalled A (committed %v)", committed(t, addrs))
	} else {
		time.Sleep(5 * lockRetry)
		if n := testutil.ToFloat64(b.m.lockWaiting); n < 1 {
			t.Errorf("B stopped waiting while A still stalls (waiting partitions %v)", n)
		}
		if point == "rename" {
			if _, err := os.Stat(firstTmp); err != nil {
				t.Errorf("B removed A's segment while A held the lock: %v", err)
			}
		}
		if got := committed(t, addrs)[tp]; got != 0 {
			t.Errorf("committed %d while A stalls", got)
		}
	}

	wake()
	waitCommitted(t, addrs, lastOffsets(recs))
	if err := stopB(); err != nil {
		t.Errorf("B: Run: %v", err)
	}
	if err := stopA(); err != nil {
		t.Errorf("A: Run: %v", err)
	}

	got := readArchive(t, dir)
	ids := eventIDs(t, got.touchpoints)
	if len(got.touchpoints) != len(recs) || len(ids) != len(recs) {
		t.Errorf("archive has %d rows, %d distinct, want %d each; files %v", len(got.touchpoints), len(ids), len(recs), got.files)
	}
	for _, r := range recs {
		var row TouchpointRow
		if err := row.UnmarshalJSON(r.Value); err != nil {
			t.Fatal(err)
		}
		if !ids[row.EventID] {
			t.Errorf("row %s missing", row.EventID)
		}
	}
	// A was really fenced by Kafka after it woke: its late commit failed.
	if n := testutil.ToFloat64(a.m.commitErrors); n < 1 {
		t.Errorf("A's commit errors = %v, want its late commit refused", n)
	}
	if s := testutil.ToFloat64(b.m.lockWaitSeconds); waited && s <= 0 {
		t.Errorf("B's lock_wait_seconds_total = %v", s)
	}
	entries, err := os.ReadDir(dtDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, _, _, tmp, _ := parseFileName(e.Name()); tmp {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestAssignWaitsThenReadsCommitUnderLock checks the order of
// onFetchOffsets directly: while another archiver holds the partition's
// lock nothing is removed; that holder's last commit lands before it
// releases; the new owner then starts from that commit (not from the
// offset kgo fetched before the lock was free) and removes only the files
// at or past it.
func TestAssignWaitsThenReadsCommitUnderLock(t *testing.T) {
	requireFencing(t)
	addrs := newCluster(t)
	dir := t.TempDir()
	tp := topicPartition{scoredTopic, 1}
	dtDir := filepath.Join(dir, TableTouchpoints, "dt=2026-10-06")
	if err := os.MkdirAll(dtDir, 0o755); err != nil {
		t.Fatal(err)
	}
	committedFile := filepath.Join(dtDir, FileName(tp.topic, tp.partition, 0))   // records 0..4, committed late
	uncommittedFile := filepath.Join(dtDir, FileName(tp.topic, tp.partition, 5)) // records 5..9, commit failed
	for _, p := range []string{committedFile, uncommittedFile} {
		if err := os.WriteFile(p, []byte("rows"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	old := lockArchiver(t, dir)
	held, err := old.lockPartitions(context.Background(), []topicPartition{tp})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a := newArchiver(t, testConfig(addrs, dir))
	a.cl = cl

	type result struct {
		offsets map[string]map[int32]kgo.Offset
		err     error
	}
	done := make(chan result, 1)
	go func() {
		// kgo fetched "nothing committed": start at the log start.
		offs, err := a.onFetchOffsets(context.Background(), map[string]map[int32]kgo.Offset{
			tp.topic: {tp.partition: kgo.NewOffset().AtStart()},
		})
		done <- result{offs, err}
	}()
	if !waitFor(5*time.Second, func() bool { return testutil.ToFloat64(a.m.lockWaiting) == 1 }) {
		t.Fatal("assignment did not wait for the held lock")
	}
	// The old owner's late segment commit succeeds while it still holds
	// the lock, then it releases.
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: tp.topic, Partition: tp.partition, At: 5, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(context.Background(), testGroup, offs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * lockRetry)
	for _, p := range []string{committedFile, uncommittedFile} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("removed while another archiver held the lock: %v", err)
		}
	}
	held[tp].release()

	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("assignment still waiting after the release")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.offsets[tp.topic][tp.partition].EpochOffset().Offset; got != 5 {
		t.Errorf("consumption starts at %d, want the commit made while waiting, 5", got)
	}
	if _, err := os.Stat(committedFile); err != nil {
		t.Errorf("file before the committed offset removed: %v", err)
	}
	if _, err := os.Stat(uncommittedFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file at the committed offset kept: %v", err)
	}
	a.mu.Lock()
	owned := a.locks[tp] != nil
	a.releaseAll()
	a.mu.Unlock()
	if !owned {
		t.Error("assignment returned without holding the partition lock")
	}
}
