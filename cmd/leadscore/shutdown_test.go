package main

// Tests of graceful shutdown and of its two escape hatches: a second
// signal, and --shutdown-timeout. Each runs the leadscore binary (`run`)
// against an in-process kfake cluster owned by the test, with a commit
// interval of 20 s, so that a transaction is open, holding every record
// the test produced, when the first signal comes. "Hung" shutdowns close
// the cluster just before that signal: the final flush and EndTxn then
// have no broker to reach.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/leadscore/leadscore/internal/kafkatest"
)

// shutdownRig is one leadscore process against a kfake cluster, with a
// transaction open.
type shutdownRig struct {
	e       *e2e
	cluster *kafkatest.Cluster
	adm     *kadm.Client
	p       *proc
	group   string
	input   string
	scored  string
	records int
}

// shutdownCommitInterval keeps the test's transaction open far longer than
// any step of the test takes.
const shutdownCommitInterval = 20 * time.Second

// startWithOpenTxn starts `leadscore run --shutdown-timeout <shutdown>`,
// produces records to its input and returns once the scorer has written
// their scored touchpoints in a transaction that is still open.
func startWithOpenTxn(t *testing.T, shutdown time.Duration) *shutdownRig {
	t.Helper()
	requireTools(t, []string{"go"}, nil)
	e := newE2E(t)
	cluster := kafkatest.Fake(t)
	r := &shutdownRig{
		e: e, cluster: cluster, adm: cluster.Admin(t),
		group: "leadscore-shutdown", input: "leadscore.touchpoints", scored: "leadscore.scored",
		records: 50,
	}
	maddr := freeAddr(t)
	r.p = e.startLeadscore("run", "--brokers", strings.Join(cluster.Brokers, ","),
		"--metrics-addr", maddr, "--group", r.group, "--transactional-id", "leadscore-shutdown-test",
		"--partitions", "1", "--commit-interval", shutdownCommitInterval.String(),
		"--transaction-timeout", "60s", "--shutdown-timeout", shutdown.String())
	e.waitReady(r.p, "http://"+maddr+"/readyz", 30*time.Second)
	e.phase("start")

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now().UTC().Format(time.RFC3339)
	recs := make([]*kgo.Record, r.records)
	for i := range recs {
		lead := fmt.Sprintf("lead-%d", i%10)
		recs[i] = &kgo.Record{Topic: r.input, Key: []byte(lead), Value: fmt.Appendf(nil,
			`{"event_id":"shutdown-%d","lead_id":%q,"type":"page_view","channel":"web","occurred_at":%q}`, i, lead, now)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	began := time.Now()

	// Every record scored: the scored topic holds them all, and none is
	// committed (its last stable offset is still 0).
	for {
		end, stable := r.scoredOffsets(ctx)
		if end >= int64(r.records) {
			if stable != 0 {
				t.Fatalf("scored topic: last stable offset %d before the signal, want 0 (the transaction should still be open)", stable)
			}
			break
		}
		if r.p.exited() {
			t.Fatalf("leadscore exited before scoring the records: %v", r.p.waitErr)
		}
		if ctx.Err() != nil {
			t.Fatalf("the scorer did not write the %d scored touchpoints within 10s (end offset %d)", r.records, end)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if took := time.Since(began); took > shutdownCommitInterval/2 {
		t.Fatalf("scoring took %v; the transaction may commit before the signal (commit interval %v)", took, shutdownCommitInterval)
	}
	e.phase("open transaction")
	return r
}

// scoredOffsets returns the end offset and the last stable offset of the
// scored topic's only partition (-1, -1 when not known yet).
func (r *shutdownRig) scoredOffsets(ctx context.Context) (end, stable int64) {
	end, stable = -1, -1
	if l, err := r.adm.ListEndOffsets(ctx, r.scored); err == nil {
		if o, ok := l.Lookup(r.scored, 0); ok && o.Err == nil {
			end = o.Offset
		}
	}
	if l, err := r.adm.ListCommittedOffsets(ctx, r.scored); err == nil {
		if o, ok := l.Lookup(r.scored, 0); ok && o.Err == nil {
			stable = o.Offset
		}
	}
	return end, stable
}

// TestShutdownCommitsOpenTransaction: one SIGTERM while a transaction is
// open commits it (its scored touchpoints become visible to read_committed
// readers, the input offsets are committed) and exits 0, long before the
// commit interval would have ended the transaction.
func TestShutdownCommitsOpenTransaction(t *testing.T) {
	r := startWithOpenTxn(t, 30*time.Second)

	code, took := r.p.terminate(30 * time.Second)
	r.e.phase("shutdown")
	if code != 0 {
		t.Fatalf("exit %d after %v, want 0", code, took)
	}
	if took >= shutdownCommitInterval/2 {
		t.Errorf("exit took %v: the open transaction should be ended at once, not at the end of the %v commit interval", took, shutdownCommitInterval)
	}
	if out := string(r.p.out.Bytes()); !strings.Contains(out, "scorer stopped") {
		t.Errorf("no \"scorer stopped\" in the log")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A committed transaction leaves its records and a commit marker below
	// the last stable offset.
	end, stable := r.scoredOffsets(ctx)
	if stable < int64(r.records) || stable != end {
		t.Errorf("scored topic: last stable offset %d, end offset %d: the transaction holding the %d scored touchpoints was not committed",
			stable, end, r.records)
	}
	offs, err := r.adm.FetchOffsets(ctx, r.group)
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", r.group, err)
	}
	if o, ok := offs.Lookup(r.input, 0); !ok || o.Err != nil || o.At != int64(r.records) {
		t.Errorf("group %s: committed input offset %+v (found %v), want %d", r.group, o, ok, r.records)
	}
}

// TestShutdownSecondSignalForcesExit: when the shutdown cannot finish (no
// broker), a second signal makes the process exit at once, with the exit
// code of the signal (128+n) and a log line saying the exit was forced,
// instead of waiting out --shutdown-timeout (60 s).
func TestShutdownSecondSignalForcesExit(t *testing.T) {
	for _, second := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(second.String(), func(t *testing.T) {
			r := startWithOpenTxn(t, 60*time.Second)
			r.cluster.KFake.Close()
			start := time.Now()
			r.p.signal(syscall.SIGTERM)
			// The first signal alone must not end the process: it is
			// trying to commit to a broker that is gone.
			time.Sleep(2 * time.Second)
			if r.p.exited() {
				t.Fatalf("leadscore exited %v after the first signal with the broker gone (%v): the shutdown did not hang, so this test proves nothing",
					time.Since(start), r.p.waitErr)
			}
			if out := string(r.p.out.Bytes()); !strings.Contains(out, "second signal forces exit") {
				t.Errorf("no log line announcing the graceful stop and the second signal")
			}

			secondAt := time.Now()
			r.p.signal(second)
			code, exited := r.p.wait(5 * time.Second)
			took := time.Since(secondAt)
			r.e.phase("second signal")
			if !exited {
				t.Fatalf("still running %v after the second signal (--shutdown-timeout 60s): the second signal was ignored", took)
			}
			if want := 128 + int(second); code != want {
				t.Errorf("exit code %d after the second signal, want %d (128+%d)", code, want, int(second))
			}
			out := string(r.p.out.Bytes())
			if !strings.Contains(out, "forced exit") || !strings.Contains(out, "second signal ("+second.String()) {
				t.Errorf("no log line saying the exit was forced by %v; output:\n%s", second, tail([]byte(out), 2000))
			}
			t.Logf("exited %v after the second signal, %v after the first", took, time.Since(start))
		})
	}
}

// TestShutdownTimeoutBoundsHungShutdown: with one signal and a shutdown
// that cannot finish, the process still exits by itself, with status 1,
// within --shutdown-timeout (3 s) and a small margin, saying why.
func TestShutdownTimeoutBoundsHungShutdown(t *testing.T) {
	const shutdown = 3 * time.Second
	r := startWithOpenTxn(t, shutdown)
	r.cluster.KFake.Close()
	start := time.Now()
	r.p.signal(syscall.SIGTERM)
	// The margin is below shutdownGrace: the pipeline's own bound must end
	// the stop, not the watchdog (TestShutdownWatchdog).
	const margin = 3 * time.Second
	code, exited := r.p.wait(shutdown + margin)
	took := time.Since(start)
	r.e.phase("shutdown")
	if !exited {
		t.Fatalf("still running %v after SIGTERM with --shutdown-timeout %v", took, shutdown)
	}
	if code != exitFailed {
		t.Errorf("exit code %d after a shutdown that could not commit, want %d", code, exitFailed)
	}
	// It did wait for the broker rather than give up at once: otherwise the
	// shutdown was not hung and the test proves nothing.
	if took < shutdown-500*time.Millisecond {
		t.Errorf("exited after %v, before --shutdown-timeout %v: the shutdown should have been waiting for the broker", took, shutdown)
	}
	if out := string(r.p.out.Bytes()); !strings.Contains(out, "the shutdown did not finish within --shutdown-timeout: ") {
		t.Errorf("no log line saying the shutdown did not finish within --shutdown-timeout; output:\n%s", tail([]byte(out), 2000))
	}
	t.Logf("exit %d after %v (--shutdown-timeout %v)", code, took, shutdown)
}

// TestShutdownWatchdog: a stop that hangs after the final commit (here the
// broker never answers the request to leave the group) is cut short
// --shutdown-timeout + 5 s after the signal, with status 1 and a log line
// saying so.
func TestShutdownWatchdog(t *testing.T) {
	const shutdown = 3 * time.Second
	r := startWithOpenTxn(t, shutdown)
	fc := r.cluster.KFake
	fc.ControlKey(int16(kmsg.LeaveGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		fc.KeepControl()
		return nil, nil, true // no answer, ever
	})
	start := time.Now()
	r.p.signal(syscall.SIGTERM)
	bound := shutdown + shutdownGrace
	code, exited := r.p.wait(bound + 3*time.Second)
	took := time.Since(start)
	r.e.phase("shutdown")
	if !exited {
		t.Fatalf("still running %v after SIGTERM (--shutdown-timeout %v, bound %v)", took, shutdown, bound)
	}
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	if took < bound-500*time.Millisecond {
		t.Errorf("exited after %v, before the bound %v: the stop was not hung, so this test proves nothing", took, bound)
	}
	if out := string(r.p.out.Bytes()); !strings.Contains(out, "did not finish within --shutdown-timeout (3s) + 5s: forced exit") {
		t.Errorf("no log line saying the stop was cut short; output:\n%s", tail([]byte(out), 2000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if end, stable := r.scoredOffsets(ctx); stable < int64(r.records) || stable != end {
		t.Errorf("scored topic: last stable offset %d, end offset %d: the final commit should have gone through before the hang", stable, end)
	}
	t.Logf("exit %d after %v (bound %v)", code, took, bound)
}

// TestDevSecondSignalSavesBroker: a second signal during dev's stop still
// saves the embedded broker's state (kfake writes it only when it closes:
// meta.json among others) before exiting 143. The signals, SIGINT then
// SIGTERM (the same signal again so soon would be taken as the same
// request: repeatWindow), go 10 ms apart; a stop that finishes in between
// exits 0 instead and the attempt is repeated.
func TestDevSecondSignalSavesBroker(t *testing.T) {
	e := newE2E(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "kafka")
	meta := filepath.Join(data, "meta.json")
	for attempt := 1; attempt <= 4; attempt++ {
		metricsAddr := freeAddr(t)
		p := e.startLeadscore("dev", "--listen", freeAddr(t), "--metrics-addr", metricsAddr,
			"--data-dir", data, "--archive-dir", filepath.Join(dir, "archive"), "--summary-every", "0", "--rate", "2000")
		e.waitReady(p, "http://"+metricsAddr+"/readyz", 60*time.Second)
		time.Sleep(time.Second) // traffic flowing, offsets committed
		st, err := os.Stat(meta)
		if err != nil {
			t.Fatalf("the embedded broker wrote no %s when it started: %v", meta, err)
		}
		before := st.ModTime()
		time.Sleep(20 * time.Millisecond) // a later save gets a later mtime
		p.signal(syscall.SIGINT)
		time.Sleep(10 * time.Millisecond)
		p.signal(syscall.SIGTERM)
		code, exited := p.wait(20 * time.Second)
		if !exited {
			t.Fatal("dev still running 20 s after SIGINT and SIGTERM")
		}
		if code == 0 {
			t.Logf("attempt %d: the stop finished before the second signal; again", attempt)
			continue
		}
		if code != 143 {
			t.Fatalf("exit code %d after SIGINT and SIGTERM, want 143", code)
		}
		st, err = os.Stat(meta)
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().After(before) {
			t.Fatalf("%s not rewritten by the forced exit (mtime %v, before the signals %v): the broker's state was not saved",
				meta, st.ModTime(), before)
		}
		return
	}
	t.Skip("in four attempts the graceful stop always finished within 10 ms: the forced path was not reached")
}
