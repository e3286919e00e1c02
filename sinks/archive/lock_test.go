package archive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/flock"
)

// lockArchiver returns an Archiver on dir that is never run: only its
// locks and metrics are used.
func lockArchiver(t *testing.T, dir string) *Archiver {
	t.Helper()
	return newArchiver(t, Config{Kafka: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, Dir: dir})
}

func requireFencing(t *testing.T) {
	t.Helper()
	if !fencingAvailable {
		t.Skip("no flock(2) on this platform: partition locks are not exclusive")
	}
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestPartitionLockExcludes(t *testing.T) {
	requireFencing(t)
	dir := t.TempDir()
	a, b := lockArchiver(t, dir), lockArchiver(t, dir)
	p0, p1 := topicPartition{scoredTopic, 0}, topicPartition{scoredTopic, 1}
	ctx := context.Background()

	heldA, err := a.lockPartitions(ctx, []topicPartition{p0})
	if err != nil || heldA[p0] == nil {
		t.Fatalf("first lock: %v %v", heldA, err)
	}
	if h := flock.Holder(lockPath(dir, p0)); !strings.HasPrefix(h, fmt.Sprintf("pid %d host ", os.Getpid())) {
		t.Errorf("holder line %q", h)
	}

	// Same process, another open file description: b must wait, also
	// for p1 that nobody holds (the partitions of one assignment are
	// locked together).
	type result struct {
		held map[topicPartition]*partitionLock
		err  error
	}
	done := make(chan result, 1)
	go func() {
		held, err := b.lockPartitions(ctx, []topicPartition{p0, p1})
		done <- result{held, err}
	}()
	if !waitFor(5*time.Second, func() bool { return testutil.ToFloat64(b.m.lockWaiting) == 1 }) {
		t.Fatalf("waiting partitions = %v, want 1", testutil.ToFloat64(b.m.lockWaiting))
	}
	time.Sleep(3 * lockRetry)
	select {
	case r := <-done:
		t.Fatalf("second holder got the lock while the first held it: %v %v", r.held, r.err)
	default:
	}

	heldA[p0].release()
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("release did not let the waiting archiver in")
	}
	if r.err != nil || r.held[p0] == nil || r.held[p1] == nil {
		t.Fatalf("after release: %v %v", r.held, r.err)
	}
	if n := testutil.ToFloat64(b.m.lockWaiting); n != 0 {
		t.Errorf("waiting partitions after the wait = %v", n)
	}
	if s := testutil.ToFloat64(b.m.lockWaitSeconds); s < 2*lockRetry.Seconds() {
		t.Errorf("lock_wait_seconds_total = %v, want at least %v", s, 2*lockRetry.Seconds())
	}
	// And now a is the one kept out.
	if ok, err := (&partitionLock{tp: p1, path: lockPath(dir, p1)}).tryLock(); ok || err != nil {
		t.Errorf("tryLock of a held partition: %v %v", ok, err)
	}
	for _, l := range r.held {
		l.release()
	}
	if h := flock.Holder(lockPath(dir, p0)); h != "unknown" {
		t.Errorf("holder line after release: %q", h)
	}
}

func TestPartitionLockWaitCanceled(t *testing.T) {
	requireFencing(t)
	dir := t.TempDir()
	a, b := lockArchiver(t, dir), lockArchiver(t, dir)
	p0, p1 := topicPartition{mqlTopic, 0}, topicPartition{mqlTopic, 1}
	heldA, err := a.lockPartitions(context.Background(), []topicPartition{p0})
	if err != nil {
		t.Fatal(err)
	}
	defer heldA[p0].release()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		held, err := b.lockPartitions(ctx, []topicPartition{p0, p1})
		if held != nil {
			// Not wrapped: a Canceled that came with locks is a failure.
			err = fmt.Errorf("got locks %v (err %v)", held, err) //nolint:errorlint // see above
		}
		done <- err
	}()
	if !waitFor(5*time.Second, func() bool { return testutil.ToFloat64(b.m.lockWaiting) == 1 }) {
		t.Fatal("second archiver is not waiting")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled wait returned %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not stop the wait")
	}
	if n := testutil.ToFloat64(b.m.lockWaiting); n != 0 {
		t.Errorf("waiting partitions after cancel = %v", n)
	}
	// p1, taken at once in the canceled call, was released with it.
	l := &partitionLock{tp: p1, path: lockPath(dir, p1)}
	if ok, err := l.tryLock(); !ok || err != nil {
		t.Errorf("p1 still locked after the canceled wait: %v %v", ok, err)
	}
	l.release()
}

const lockHelperEnv = "LEADSCORE_ARCHIVE_LOCK_HELPER_DIR"

// TestLockHelperProcess is not a test: TestPartitionLockReleasedOnKill
// runs the test binary with lockHelperEnv set to take a partition lock in
// another process, report it and sleep until killed.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestPartitionLockReleasedOnKill")
	}
	held, err := lockArchiver(t, dir).lockPartitions(context.Background(), []topicPartition{{dlqTopic, 2}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	held[topicPartition{dlqTopic, 2}].release()
}

// A process killed with SIGKILL does not leave its partitions locked.
func TestPartitionLockReleasedOnKill(t *testing.T) {
	requireFencing(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q (%v)", line, err)
	}

	tp := topicPartition{dlqTopic, 2}
	l := &partitionLock{tp: tp, path: lockPath(dir, tp)}
	defer l.release()
	if ok, err := l.tryLock(); ok || err != nil {
		t.Fatalf("locked while the helper holds it: %v %v", ok, err)
	}
	if h := flock.Holder(l.path); !strings.HasPrefix(h, fmt.Sprintf("pid %d ", cmd.Process.Pid)) {
		t.Errorf("holder line %q, want the helper's pid %d", h, cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on unix
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !waitFor(2*time.Second, func() bool { ok, err := l.tryLock(); return ok || err != nil }) {
		t.Fatal("lock still held after its holder was killed")
	}
	if !l.held {
		t.Fatal("tryLock failed after the holder was killed")
	}
}
