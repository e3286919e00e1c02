package main

// Helpers of the end-to-end tests (e2e_test.go): building and running the
// leadscore binary, running kcat and the Python scripts, scraping metrics,
// and the records the tests produce.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// e2eBinDir holds the binary built for the tests; set by TestMain and
// removed when the test binary exits.
var e2eBinDir string

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildCmd  string
	buildTook time.Duration
)

// leadscoreBinary builds ./cmd/leadscore once per test binary (with -race
// when the tests run with it, so that the product runs under the race
// detector too) and returns its path.
func leadscoreBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		dir := e2eBinDir
		if dir == "" {
			buildErr = errors.New("TestMain did not set the build directory")
			return
		}
		out := filepath.Join(dir, "leadscore")
		args := []string{"build", "-o", out}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, ".")
		cmd := exec.Command("go", args...)
		buildCmd = "go " + shellJoin(args)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %w\n%s", buildCmd, err, b)
			return
		}
		buildPath, buildTook = out, time.Since(start)
	})
	if buildErr != nil {
		t.Fatalf("build leadscore: %v", buildErr)
	}
	return buildPath
}

// moduleRoot is the repository root, two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

// requireTools skips the test when a command or a Python module is
// missing, or fails it when CI=true: CI must run these tests.
func requireTools(t *testing.T, commands []string, pyModules []string) {
	t.Helper()
	var missing []string
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, "command "+c)
		}
	}
	if len(pyModules) > 0 {
		if _, err := exec.LookPath("python3"); err != nil {
			missing = append(missing, "command python3")
		} else {
			// One interpreter, and find_spec rather than import: pandas and
			// pyarrow take a second each to import.
			script := "import importlib.util, sys\n" +
				"print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
			out, err := exec.Command("python3", append([]string{"-c", script}, pyModules...)...).Output()
			if err != nil {
				missing = append(missing, fmt.Sprintf("a working python3 (%v)", err))
			}
			for m := range strings.FieldsSeq(string(out)) {
				missing = append(missing, "Python module "+m)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing %s (install: apt-get install -y kcat; python3 -m pip install -r deploy/requirements-test.txt; or run `make deps`)",
		strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", msg)
	}
	t.Skip(msg)
}

// e2e is the state of one end-to-end test: the commands it ran (printed
// when the test fails) and the leadscore processes it started.
type e2e struct {
	t     *testing.T
	root  string
	bin   string
	start time.Time

	mu     sync.Mutex
	cmds   []string
	phases []string
	last   time.Time
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	e := &e2e{t: t, root: moduleRoot(t), bin: leadscoreBinary(t), start: time.Now()}
	e.last = e.start
	e.note(buildCmd)
	e.phases = append(e.phases, fmt.Sprintf("build (once per test binary) %.1fs", buildTook.Seconds()))
	t.Cleanup(func() {
		if t.Failed() {
			e.mu.Lock()
			t.Logf("commands run (from %s):\n  %s", filepath.Join(e.root, "cmd", "leadscore"), strings.Join(e.cmds, "\n  "))
			e.mu.Unlock()
		}
		t.Logf("timings: %s; total %.1fs", strings.Join(e.phases, ", "), time.Since(e.start).Seconds())
	})
	return e
}

func (e *e2e) note(cmd string) {
	e.mu.Lock()
	e.cmds = append(e.cmds, cmd)
	e.mu.Unlock()
}

// phase records how long the step that just ended took.
func (e *e2e) phase(name string) {
	now := time.Now()
	e.phases = append(e.phases, fmt.Sprintf("%s %.1fs", name, now.Sub(e.last).Seconds()))
	e.last = now
}

// path returns a file of the repository.
func (e *e2e) path(rel string) string { return filepath.Join(e.root, filepath.FromSlash(rel)) }

// run runs a command to completion with a timeout and returns its stdout;
// stdin may be nil. A non-zero exit fails the test with stderr.
func (e *e2e) run(timeout time.Duration, stdin io.Reader, name string, args ...string) []byte {
	e.t.Helper()
	stdout, stderr, err := e.runErr(timeout, stdin, name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\nstderr:\n%s", name, shellJoin(args), err, tail(stderr, 4000))
	}
	return stdout
}

// runErr is run without failing the test.
func (e *e2e) runErr(timeout time.Duration, stdin io.Reader, name string, args ...string) (stdout, stderr []byte, err error) {
	e.t.Helper()
	e.note(name + " " + shellJoin(args))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var o, s bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &s
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return o.Bytes(), s.Bytes(), err
}

// proc is a running leadscore process.
type proc struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error
}

// startLeadscore starts the binary with args; the process is killed when
// the test ends if it is still running, and its output is logged when the
// test failed.
func (e *e2e) startLeadscore(args ...string) *proc {
	e.t.Helper()
	e.note(e.bin + " " + shellJoin(args))
	p := &proc{cmd: exec.Command(e.bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start leadscore: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("leadscore output (last 8 KiB):\n%s", tail(p.out.Bytes(), 8<<10))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM and waits up to limit; it returns the exit code
// (-1 when killed after the limit) and how long the exit took.
func (p *proc) terminate(limit time.Duration) (code int, took time.Duration) {
	start := time.Now()
	p.signal(syscall.SIGTERM)
	code, exited := p.wait(limit)
	if !exited {
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1, time.Since(start)
	}
	return code, time.Since(start)
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// wait waits up to limit for the process to exit and returns its exit
// code (-1 when a signal killed it); exited is false when it is still
// running after limit.
func (p *proc) wait(limit time.Duration) (code int, exited bool) {
	select {
	case <-p.done:
	case <-time.After(limit):
		return 0, false
	}
	if p.waitErr == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode(), true
	}
	return -1, true
}

// waitReady polls url until it answers 200 or the process exits.
func (e *e2e) waitReady(p *proc, url string, limit time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	last := "no answer"
	for time.Now().Before(deadline) {
		if p.exited() {
			e.t.Fatalf("leadscore exited before %s answered 200: %v", url, p.waitErr)
		}
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("%s not ready within %v: %s", url, limit, last)
}

// metrics is one scrape: each series ("name" or "name{labels}" as
// exposed) and each metric name summed over its labels.
type metrics struct {
	series map[string]float64
	sums   map[string]float64
}

func scrape(url string) (metrics, error) {
	resp, err := http.Get(url)
	if err != nil {
		return metrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metrics{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := metrics{series: map[string]float64{}, sums: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		m.series[series] = v
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
		}
		m.sums[name] += v
	}
	return m, sc.Err()
}

// waitMetrics scrapes url until ok says the scrape is what the test waits
// for, and returns that scrape; it fails the test after limit with the
// last scrape's values of the watched names.
func (e *e2e) waitMetrics(p *proc, url string, limit time.Duration, what string, watch []string, ok func(metrics) bool) metrics {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	var last metrics
	var lastErr error
	for {
		m, err := scrape(url)
		if err == nil {
			last, lastErr = m, nil
			if ok(m) {
				return m
			}
		} else {
			lastErr = err
		}
		if p.exited() {
			e.t.Fatalf("leadscore exited while waiting for %s: %v", what, p.waitErr)
		}
		if time.Now().After(deadline) {
			var vals []string
			for _, w := range watch {
				if v, found := last.series[w]; found {
					vals = append(vals, fmt.Sprintf("%s=%g", w, v))
				} else {
					vals = append(vals, fmt.Sprintf("%s=%g", w, last.sums[w]))
				}
			}
			e.t.Fatalf("%s: not within %v (scrape error: %v); last: %s", what, limit, lastErr, strings.Join(vals, " "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams
// and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.b.Bytes())
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "..." + string(b[len(b)-n:])
	}
	return string(b)
}

// shellJoin quotes args for a shell, for the failure log; long arguments
// are shortened.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if len(a) > 200 {
			a = a[:200] + "...(" + strconv.Itoa(len(a)) + " bytes)"
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+%", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// relEqual says whether a and b agree to a relative tol.
func relEqual(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

// ---------------------------------------------------------------------------
// The records produced

// inRecord is one record the test produces to the input topic.
type inRecord struct {
	name  string // for messages
	key   string
	value string
	// ref: the record is given to the reference implementation, which
	// decides its fate; else want is the dead-letter reason (a check the
	// reference does not make: record size, record key).
	ref  bool
	want string
}

// inBatch is one kcat invocation: its records share headers and codec.
type inBatch struct {
	headers []string // "name=value", kcat -H
	zstd    bool     // compressed, with a raised client message size limit
	recs    []inRecord
}

// sampleRecord is one line of bench/testdata/sample.jsonl.
type sampleRecord struct {
	line  string
	lead  string // lead_id, else anonymous_id: the record key
	event string
	tms   int64 // occurred_at, epoch ms
}

func readSample(t *testing.T, path string) []sampleRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []sampleRecord
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v struct {
			EventID     string          `json:"event_id"`
			LeadID      string          `json:"lead_id"`
			AnonymousID string          `json:"anonymous_id"`
			OccurredAt  json.RawMessage `json:"occurred_at"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		r := sampleRecord{line: line, lead: v.LeadID, event: v.EventID}
		if r.lead == "" {
			r.lead = v.AnonymousID
		}
		var s string
		if json.Unmarshal(v.OccurredAt, &s) == nil {
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatalf("%s:%d: occurred_at: %v", path, i+1, err)
			}
			r.tms = ts.UnixMilli()
		} else if err := json.Unmarshal(v.OccurredAt, &r.tms); err != nil {
			t.Fatalf("%s:%d: occurred_at: %v", path, i+1, err)
		}
		out = append(out, r)
	}
	return out
}

// testStream builds the records of both end-to-end tests: the sample
// stream in two batches (the second with headers), then hostile records
// and re-deliveries of one lead's whole history, then an oversized record
// (compressed, or no broker would take it).
func testStream(t *testing.T, sample []sampleRecord, now time.Time) []inBatch {
	t.Helper()
	if len(sample) < 20 {
		t.Fatalf("sample has %d records", len(sample))
	}
	half := len(sample) / 2
	var b1, b2 inBatch
	for _, s := range sample[:half] {
		b1.recs = append(b1.recs, inRecord{name: s.event, key: s.lead, value: s.line, ref: true})
	}
	b2.headers = []string{
		"traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"x-e2e-batch=2",
	}
	for _, s := range sample[half:] {
		b2.recs = append(b2.recs, inRecord{name: s.event, key: s.lead, value: s.line, ref: true})
	}

	// The lead whose events span the longest: a touchpoint 8 days before
	// its latest is too late (max_lateness 7 days).
	first, latest := map[string]int64{}, map[string]int64{}
	for _, s := range sample {
		if _, ok := first[s.lead]; !ok || s.tms < first[s.lead] {
			first[s.lead] = s.tms
		}
		latest[s.lead] = max(latest[s.lead], s.tms)
	}
	lateLead := ""
	for lead := range latest {
		if lateLead == "" || latest[lead]-first[lead] > latest[lateLead]-first[lateLead] ||
			latest[lead]-first[lead] == latest[lateLead]-first[lateLead] && lead < lateLead {
			lateLead = lead
		}
	}
	rfc := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
	mid := rfc(sample[half].tms)
	obj := func(m map[string]any) string {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	b3 := inBatch{headers: []string{"x-e2e-batch=3", "content-type=application/json"}}
	// Re-deliveries of a qualifying lead's whole history, its MQL trigger
	// included: duplicates (or too_late, for the oldest), never a second MQL.
	for _, s := range sample {
		if s.lead == "lead-000001" {
			b3.recs = append(b3.recs, inRecord{name: "redelivered " + s.event, key: s.lead, value: s.line, ref: true})
		}
	}
	b3.recs = append(b3.recs,
		inRecord{name: "malformed JSON", key: "lead-000004", ref: true,
			value: `{"event_id":"e2e-bad-json","lead_id":"lead-000004","type":"page_view","occurred_at":"` + mid + `"`},
		inRecord{name: "too late", key: lateLead, ref: true, value: obj(map[string]any{
			"event_id": "e2e-too-late", "lead_id": lateLead, "type": "demo_request", "channel": "web",
			"occurred_at": rfc(latest[lateLead] - 8*24*3600*1000),
		})},
		inRecord{name: "future", key: "lead-000006", ref: true, value: obj(map[string]any{
			"event_id": "e2e-future", "lead_id": "lead-000006", "type": "demo_request", "channel": "web",
			"occurred_at": now.Add(time.Hour).UTC().Format(time.RFC3339),
		})},
		inRecord{name: "missing event_id", key: "lead-000005", ref: true, value: obj(map[string]any{
			"lead_id": "lead-000005", "type": "page_view", "channel": "web", "occurred_at": mid,
		})},
		inRecord{name: "key disagrees with lead_id", key: "lead-000007", want: "key_mismatch", value: obj(map[string]any{
			"event_id": "e2e-key-mismatch", "lead_id": "lead-000008", "type": "demo_request", "channel": "web", "occurred_at": mid,
		})},
	)

	b4 := inBatch{zstd: true, recs: []inRecord{{name: "oversized", key: "lead-000009", want: "oversized", value: obj(map[string]any{
		"event_id": "e2e-oversized", "lead_id": "lead-000009", "type": "page_view", "channel": "web", "occurred_at": mid,
		"properties": map[string]any{"url": "https://www.example.com/pricing", "pad": strings.Repeat("x", 1<<20)},
	})}}}
	return []inBatch{b1, b2, b3, b4}
}

// produce writes each batch with one kcat invocation, in order: kcat
// exits only when its records are acknowledged, and idempotence keeps the
// order within one invocation, so each key's records land in order.
func (e *e2e) produce(brokers, topic string, batches []inBatch) int {
	e.t.Helper()
	dir := e.t.TempDir()
	n := 0
	for i, b := range batches {
		var buf bytes.Buffer
		for _, r := range b.recs {
			if strings.ContainsAny(r.key, "\t\n") || strings.ContainsAny(r.value, "\t\n") {
				e.t.Fatalf("record %q holds a tab or newline, kcat's delimiters", r.name)
			}
			buf.WriteString(r.key + "\t" + r.value + "\n")
		}
		file := filepath.Join(dir, fmt.Sprintf("batch%d.tsv", i+1))
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			e.t.Fatal(err)
		}
		args := []string{"-P", "-b", brokers, "-t", topic, "-K", "\t",
			"-X", "enable.idempotence=true", "-X", "client.id=leadscore-e2e-kcat"}
		for _, h := range b.headers {
			args = append(args, "-H", h)
		}
		if b.zstd {
			args = append(args, "-z", "zstd", "-X", "message.max.bytes=8000000")
		}
		args = append(args, "-l", file)
		e.run(30*time.Second, nil, "kcat", args...)
		n += len(b.recs)
	}
	return n
}

// ---------------------------------------------------------------------------
// The reference implementation

// refMQL is an MQL line of bench/reference/scoring_ref.py.
type refMQL struct {
	LeadID         string  `json:"lead_id"`
	Sequence       int     `json:"sequence"`
	TriggerEventID string  `json:"trigger_event_id"`
	Score          float64 `json:"score"`
	Fit            float64 `json:"fit"`
	QualifiedAtMS  int64   `json:"qualified_at_ms"`
}

// expectation is what the pipeline must do with the test's records.
type expectation struct {
	mqls       []refMQL
	scored     int // records applied (archived as touchpoints)
	duplicates int
	dead       []deadWant
	dates      []string // dt partitions of the scored records (UTC event dates)
}

type deadWant struct {
	name, key, value, reason string
}

// expect runs the reference on the records it is given (in produce order:
// it needs only each lead's order) and adds the dead letters the
// reference does not decide.
func (e *e2e) expect(batches []inBatch, now time.Time) expectation {
	e.t.Helper()
	type refIn struct {
		Partition int    `json:"partition"`
		Offset    int    `json:"offset"`
		Key       string `json:"key"`
		Value     string `json:"value"`
	}
	var (
		buf  bytes.Buffer
		recs []inRecord
		ex   expectation
	)
	enc := json.NewEncoder(&buf)
	for _, b := range batches {
		for _, r := range b.recs {
			if !r.ref {
				ex.dead = append(ex.dead, deadWant{r.name, r.key, r.value, r.want})
				continue
			}
			if err := enc.Encode(refIn{Partition: 0, Offset: len(recs), Key: r.key, Value: r.value}); err != nil {
				e.t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	in := filepath.Join(e.t.TempDir(), "reference-input.jsonl")
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		e.t.Fatal(err)
	}
	out := e.run(60*time.Second, nil, "python3", e.path("bench/reference/scoring_ref.py"),
		"--model", e.path("models/default.yaml"), "--input", in, "--now-ms", strconv.FormatInt(now.UnixMilli(), 10))
	fate := make([]string, len(recs)) // "" scored, "duplicate", or a dead-letter reason
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var v struct {
			refMQL
			DeadLetter *string `json:"dead_letter"`
			Duplicate  bool    `json:"duplicate"`
			Final      bool    `json:"final"`
			Offset     int     `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			e.t.Fatalf("reference output %q: %v", line, err)
		}
		switch {
		case v.Final:
		case v.DeadLetter != nil:
			fate[v.Offset] = *v.DeadLetter
		case v.Duplicate:
			fate[v.Offset] = "duplicate"
		case v.TriggerEventID != "":
			ex.mqls = append(ex.mqls, v.refMQL)
		default:
			e.t.Fatalf("reference output line not understood: %s", line)
		}
	}
	dates := map[string]bool{}
	for i, r := range recs {
		switch fate[i] {
		case "":
			ex.scored++
			var v struct {
				OccurredAt json.RawMessage `json:"occurred_at"`
			}
			_ = json.Unmarshal([]byte(r.value), &v)
			var s string
			var ms int64
			if json.Unmarshal(v.OccurredAt, &s) == nil {
				ts, _ := time.Parse(time.RFC3339Nano, s)
				ms = ts.UnixMilli()
			} else {
				_ = json.Unmarshal(v.OccurredAt, &ms)
			}
			dates[time.UnixMilli(ms).UTC().Format(time.DateOnly)] = true
		case "duplicate":
			ex.duplicates++
		default:
			ex.dead = append(ex.dead, deadWant{r.name, r.key, r.value, fate[i]})
		}
	}
	for d := range dates {
		ex.dates = append(ex.dates, d)
	}
	slices.Sort(ex.dates)
	reasons := map[string]int{}
	for _, d := range ex.dead {
		reasons[d.reason]++
	}
	e.t.Logf("expected: %d MQL events, %d scored, %d duplicates, dead letters %v", len(ex.mqls), ex.scored, ex.duplicates, reasons)
	return ex
}

// ---------------------------------------------------------------------------
// Checking the outputs

// checkedMQL is a line of bench/interop/mqlcheck.py or consume_mql.py.
type checkedMQL struct {
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	MQL       struct {
		MQLID          string  `json:"mql_id"`
		LeadID         string  `json:"lead_id"`
		Sequence       int     `json:"sequence"`
		QualifiedAt    string  `json:"qualified_at"`
		TriggerEventID string  `json:"trigger_event_id"`
		Score          float64 `json:"score"`
		Fit            float64 `json:"fit"`
	} `json:"mql"`
}

func parseChecked(t *testing.T, out []byte) []checkedMQL {
	t.Helper()
	var got []checkedMQL
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var c checkedMQL
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("checker output %q: %v", line, err)
		}
		got = append(got, c)
	}
	return got
}

// compareMQL checks the MQL events read from Kafka against the reference:
// the same (lead, sequence, trigger) set, scores and fit to a relative
// 1e-9, the same qualified_at, and no mql_id or (lead, sequence) twice.
func compareMQL(t *testing.T, got []checkedMQL, want []refMQL) {
	t.Helper()
	type id struct {
		lead    string
		seq     int
		trigger string
	}
	wantBy := map[id]refMQL{}
	for _, w := range want {
		wantBy[id{w.LeadID, w.Sequence, w.TriggerEventID}] = w
	}
	seen := map[id]bool{}
	ids := map[string]bool{}
	for _, g := range got {
		m := g.MQL
		k := id{m.LeadID, m.Sequence, m.TriggerEventID}
		where := fmt.Sprintf("MQL at partition %d offset %d (%s #%d, trigger %s)", g.Partition, g.Offset, m.LeadID, m.Sequence, m.TriggerEventID)
		if ids[m.MQLID] {
			t.Errorf("%s: mql_id %s appears twice", where, m.MQLID)
		}
		ids[m.MQLID] = true
		if seen[k] {
			t.Errorf("%s: duplicated", where)
			continue
		}
		seen[k] = true
		w, ok := wantBy[k]
		if !ok {
			t.Errorf("%s: not expected by the reference (reference: %+v)", where, want)
			continue
		}
		if !relEqual(m.Score, w.Score, 1e-9) {
			t.Errorf("%s: score %.17g, reference %.17g", where, m.Score, w.Score)
		}
		if !relEqual(m.Fit, w.Fit, 1e-9) {
			t.Errorf("%s: fit %.17g, reference %.17g", where, m.Fit, w.Fit)
		}
		if q, err := time.Parse(time.RFC3339Nano, m.QualifiedAt); err != nil || q.UnixMilli() != w.QualifiedAtMS {
			t.Errorf("%s: qualified_at %q, reference %s", where, m.QualifiedAt, time.UnixMilli(w.QualifiedAtMS).UTC().Format(time.RFC3339Nano))
		}
	}
	for k, w := range wantBy {
		if !seen[k] {
			t.Errorf("MQL missing: %s #%d trigger %s (score %g)", w.LeadID, w.Sequence, w.TriggerEventID, w.Score)
		}
	}
}

// kcatRecord is a line of kcat -C -J.
type kcatRecord struct {
	Partition int      `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
	Headers   []string `json:"headers"`
}

// consumeKcat reads a whole topic with kcat as a read_committed consumer
// and returns the raw -J output.
func (e *e2e) consumeKcat(brokers, topic string) []byte {
	e.t.Helper()
	return e.run(30*time.Second, nil, "kcat", "-C", "-b", brokers, "-t", topic, "-J", "-e", "-q", "-o", "beginning",
		"-X", "isolation.level=read_committed", "-X", "fetch.message.max.bytes=16777216", "-X", "client.id=leadscore-e2e-kcat")
}

// checkDLQ checks that every expected dead letter is on the topic exactly
// once, unchanged, with its reason and source headers, and nothing else.
func checkDLQ(t *testing.T, raw []byte, inputTopic string, want []deadWant) {
	t.Helper()
	pending := map[string][]deadWant{}
	for _, w := range want {
		k := w.key + "\x00" + w.value
		pending[k] = append(pending[k], w)
	}
	sources := map[string]bool{}
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var r kcatRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("kcat output %q: %v", tail([]byte(line), 300), err)
		}
		n++
		h := map[string]string{}
		for i := 0; i+1 < len(r.Headers); i += 2 {
			h[r.Headers[i]] = r.Headers[i+1]
		}
		key, val := deref(r.Key), deref(r.Payload)
		where := fmt.Sprintf("dead letter at partition %d offset %d (key %q, reason %q, value %s)", r.Partition, r.Offset, key, h["leadscore.reason"], tail([]byte(val), 120))
		if h["leadscore.source.topic"] != inputTopic {
			t.Errorf("%s: leadscore.source.topic %q, want %q", where, h["leadscore.source.topic"], inputTopic)
		}
		sp, err1 := strconv.Atoi(h["leadscore.source.partition"])
		so, err2 := strconv.ParseInt(h["leadscore.source.offset"], 10, 64)
		if err1 != nil || err2 != nil || sp < 0 || so < 0 {
			t.Errorf("%s: source partition/offset headers %q/%q", where, h["leadscore.source.partition"], h["leadscore.source.offset"])
		}
		src := fmt.Sprintf("%d/%d", sp, so)
		if sources[src] {
			t.Errorf("%s: source %s dead-lettered twice", where, src)
		}
		sources[src] = true
		if h["leadscore.detail"] == "" {
			t.Errorf("%s: no leadscore.detail header", where)
		}
		k := key + "\x00" + val
		list := pending[k]
		i := slices.IndexFunc(list, func(w deadWant) bool { return w.reason == h["leadscore.reason"] })
		if i < 0 {
			var reasons []string
			for _, w := range list {
				reasons = append(reasons, w.name+": "+w.reason)
			}
			t.Errorf("%s: not expected (expected for this key and value: %v)", where, reasons)
			continue
		}
		pending[k] = slices.Delete(list, i, i+1)
	}
	for _, list := range pending {
		for _, w := range list {
			t.Errorf("dead letter missing: %s (key %q, reason %s)", w.name, w.key, w.reason)
		}
	}
	if n != len(want) {
		t.Errorf("%d dead letters, want %d", n, len(want))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// archiveReport is the part of bench/pyread/check_archive.py's output the
// tests read.
type archiveReport map[string]struct {
	Rows    int               `json:"rows"`
	Columns map[string]string `json:"columns"`
	DT      []string          `json:"dt"`
}

// archiveIDs is the output of bench/interop/archive_ids.py.
type archiveIDs struct {
	Touchpoints []string `json:"touchpoints"`
	MQL         []string `json:"mql"`
}

// checkArchive runs the Python readers on an archive directory and checks
// the row counts, the column types and that no row is there twice.
func (e *e2e) checkArchive(dir string, touchpoints, mqls, dead int, dates []string) {
	e.t.Helper()
	t := e.t
	out := e.run(60*time.Second, nil, "python3", e.path("bench/pyread/check_archive.py"), dir)
	var rep archiveReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check_archive.py output: %v\n%s", err, tail(out, 2000))
	}
	for _, c := range []struct {
		table string
		want  int
	}{{"touchpoints", touchpoints}, {"mql", mqls}, {"dead_letters", dead}} {
		r := rep[c.table]
		if r.Rows != c.want {
			t.Errorf("archive %s: %d rows, want %d", c.table, r.Rows, c.want)
		}
		if c.want > 0 {
			if _, ok := r.Columns["dt"]; !ok {
				t.Errorf("archive %s: no dt partition column (columns %v)", c.table, r.Columns)
			}
		}
	}
	if typ := rep["touchpoints"].Columns["occurred_at"]; !strings.HasPrefix(typ, "timestamp") {
		t.Errorf("archive touchpoints: occurred_at is %q, want a timestamp type", typ)
	}
	if dates != nil && !slices.Equal(rep["touchpoints"].DT, dates) {
		t.Errorf("archive touchpoints: dt partitions %v, want the event dates %v", rep["touchpoints"].DT, dates)
	}

	out = e.run(60*time.Second, nil, "python3", e.path("bench/interop/archive_ids.py"), dir)
	var ids archiveIDs
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatalf("archive_ids.py output: %v\n%s", err, tail(out, 2000))
	}
	for table, list := range map[string][]string{"touchpoints (lead_id/event_id)": ids.Touchpoints, "mql (mql_id)": ids.MQL} {
		seen := map[string]bool{}
		for _, id := range list {
			if seen[id] {
				t.Errorf("archive %s: %s archived twice", table, id)
			}
			seen[id] = true
		}
	}
}

// pipeline is the topics and consumer groups of one test's leadscore run,
// named after a random prefix so that tests sharing a broker do not meet.
type pipeline struct {
	prefix string
	topics map[string]string // touchpoints, mql, dlq, state, scored
	groups []string          // scorer, archiver, then the extra ones
}

// newPipeline names a run's topics and groups after prefix plus a random
// suffix, and deletes them when the test ends. Call it before starting
// the process: cleanups run last first, so the process is gone by then.
func newPipeline(t *testing.T, adm *kadm.Client, prefix string, extraGroups ...string) *pipeline {
	t.Helper()
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	p := &pipeline{prefix: prefix + hex.EncodeToString(suffix[:]), topics: map[string]string{}}
	for _, name := range []string{"touchpoints", "mql", "dlq", "state", "scored"} {
		p.topics[name] = p.prefix + "." + name
	}
	p.groups = []string{p.prefix + "-scorer", p.prefix + "-archiver"}
	for _, g := range extraGroups {
		p.groups = append(p.groups, p.prefix+"-"+g)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var names []string
		for _, tp := range p.topics {
			names = append(names, tp)
		}
		if _, err := adm.DeleteTopics(ctx, names...); err != nil {
			t.Logf("warning: delete topics %v: %v", names, err)
		}
		if _, err := adm.DeleteGroups(ctx, p.groups...); err != nil {
			t.Logf("warning: delete groups %v: %v", p.groups, err)
		}
	})
	return p
}

// runArgs are the flags that point `leadscore run` at the pipeline's
// topics and groups, with 3 input partitions.
func (p *pipeline) runArgs(archiveDir, metricsAddr string) []string {
	return []string{"--archive-dir", archiveDir, "--metrics-addr", metricsAddr,
		"--group", p.groups[0], "--archive-group", p.groups[1], "--transactional-id", p.prefix + "-txn",
		"--topic-touchpoints", p.topics["touchpoints"], "--topic-mql", p.topics["mql"], "--topic-dlq", p.topics["dlq"],
		"--topic-state", p.topics["state"], "--topic-scored", p.topics["scored"], "--partitions", "3"}
}

// waitAllScored waits until the process has consumed n records and checks
// that each was scored, a duplicate or dead-lettered, some scored.
func (e *e2e) waitAllScored(p *proc, metricsURL string, n int) metrics {
	e.t.Helper()
	m := e.waitMetrics(p, metricsURL, 30*time.Second, fmt.Sprintf("%d records consumed", n),
		[]string{"leadscore_touchpoints_consumed_total"},
		func(m metrics) bool { return m.sums["leadscore_touchpoints_consumed_total"] >= float64(n) })
	scored := int(m.sums["leadscore_touchpoints_scored_total"])
	dup := int(m.sums["leadscore_touchpoints_duplicate_total"])
	dead := int(m.sums["leadscore_touchpoints_dead_lettered_total"])
	if got := m.sums["leadscore_touchpoints_consumed_total"]; got != float64(n) || scored+dup+dead != n || scored == 0 {
		e.t.Errorf("consumed %g, scored %d + duplicate %d + dead-lettered %d; want %d consumed, each in one of them, some scored",
			got, scored, dup, dead, n)
	}
	return m
}
