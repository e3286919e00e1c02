package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/leadscore/leadscore/bench/synth"
)

// harness is the state of one Run.
type harness struct {
	cfg    Config
	bin    string
	dir    string
	script string
	prefix string
	adm    *kadm.Client
	rng    *mrand.Rand
	rep    *Report
	input  offsets // end offsets of each input topic once produced
}

// Run produces the input, runs the reference and the chaos run, and
// compares their outputs. The error is for a harness that could not do
// its job (no broker, a run that never finished); differences between the
// runs are in the Report (Report.Failures).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &harness{
		cfg: cfg,
		rng: mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x6c656164)),
		rep: &Report{Events: cfg.Events, Leads: cfg.Leads, Partitions: cfg.Partitions, Start: time.Now(), Machine: machine()},
	}
	begin := time.Now()
	h.dir = cfg.Dir
	if h.dir == "" {
		d, err := os.MkdirTemp("", "leadscore-chaos-")
		if err != nil {
			return nil, fmt.Errorf("chaos: work directory: %w", err)
		}
		h.dir = d
	} else if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: work directory: %w", err)
	}
	h.rep.Dir = h.dir
	if err := h.tools(ctx); err != nil {
		return nil, err
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	h.prefix = "chaos-" + time.Now().Format("0102-150405") + "-" + hex.EncodeToString(suffix[:])
	adm, cl, err := admin(cfg.Brokers)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	h.adm = adm

	ref, chaos := h.spec("ref"), h.spec("chaos")
	if !cfg.KeepTopics {
		defer h.cleanup(ref, chaos)
	}
	err = h.run(ctx, ref, chaos)
	h.rep.TotalWall = time.Since(begin)
	if err == nil && cfg.Dir == "" && len(h.rep.Failures()) == 0 {
		_ = os.RemoveAll(h.dir)
		h.rep.Dir = ""
	}
	return h.rep, err
}

func (h *harness) run(ctx context.Context, ref, chaos runSpec) error {
	cfg := h.cfg
	for _, s := range []runSpec{ref, chaos} {
		if err := createTopic(ctx, h.adm, s.input, cfg.Partitions); err != nil {
			return err
		}
	}
	// Simulated event time that ends well before now (the future check
	// uses the wall clock): the mean step times the count, plus margin.
	span := time.Duration(float64(cfg.Step) * float64(cfg.Events) * 1.2)
	gen := synth.GenConfig{
		Seed:  cfg.Seed,
		Leads: cfg.Leads,
		Step:  cfg.Step,
		Start: time.Now().Add(-span - time.Hour).Truncate(time.Second),
	}
	h.logf("producing %d records to %s (seed %d, %d leads, %d partitions)", cfg.Events, ref.input, cfg.Seed, cfg.Leads, cfg.Partitions)
	st, err := produceInput(ctx, cfg.Brokers, gen, ref.input, cfg.Events, cfg.Partitions, 0)
	h.rep.ProduceWall = st.Elapsed
	if err != nil {
		return err
	}
	if h.input, err = endOffsets(ctx, h.adm, ref.input); err != nil {
		return err
	}
	h.logf("produced in %v (%.0f records/s)", st.Elapsed.Round(time.Millisecond), float64(st.Produced)/max(st.Elapsed.Seconds(), 1e-9))

	// Reference run.
	start := time.Now()
	want := newOutputs()
	if err := h.reference(ctx, ref, want); err != nil {
		return fmt.Errorf("reference run: %w", err)
	}
	h.rep.ReferenceWall = time.Since(start)
	h.logf("reference run done in %v: %d MQL events, %d leads", h.rep.ReferenceWall.Round(time.Second), len(want.mql.n), len(want.state))

	// Chaos run, its input produced while it runs.
	start = time.Now()
	got := newOutputs()
	if err := h.chaos(ctx, chaos, gen, got); err != nil {
		return fmt.Errorf("chaos run: %w", err)
	}
	h.rep.ChaosWall = time.Since(start)
	h.logf("chaos run done in %v: %d MQL events, %d leads", h.rep.ChaosWall.Round(time.Second), len(got.mql.n), len(got.state))

	start = time.Now()
	err = compareOutputs(h.rep, want, got, time.Now().UnixMilli())
	h.rep.CompareWall = time.Since(start)
	return err
}

// tools finds the binary (building it when needed) and the broker script.
func (h *harness) tools(ctx context.Context) error {
	h.bin, h.script = h.cfg.Binary, h.cfg.KafkaScript
	if h.bin != "" && (!h.cfg.BrokerRestart || h.script != "") {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if h.script == "" {
		h.script = filepath.Join(root, "deploy", "kafka.sh")
	}
	if h.bin == "" {
		h.logf("building ./cmd/leadscore")
		if h.bin, err = buildBinary(ctx, root, h.dir); err != nil {
			return err
		}
	}
	return nil
}

// spec names one run's topics, groups and archive directory.
func (h *harness) spec(name string) runSpec {
	p := h.prefix + "." + name
	return runSpec{
		name:         name,
		input:        p + ".touchpoints",
		mql:          p + ".mql",
		dlq:          p + ".dlq",
		scored:       p + ".scored",
		state:        p + ".state",
		group:        p,
		archiveGroup: p + "-archiver",
		archiveDir:   filepath.Join(h.dir, name, "archive"),
	}
}

func (h *harness) instance(s runSpec, name string) *instance {
	return &instance{h: h, spec: s, id: h.prefix + "-" + name, log: filepath.Join(h.dir, s.name, name+".log")}
}

// reference runs one instance, never interrupted, to the end.
func (h *harness) reference(ctx context.Context, s runSpec, o *outputs) error {
	if err := os.MkdirAll(filepath.Join(h.dir, s.name), 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	in := h.instance(s, "ref")
	if err := in.start(); err != nil {
		return err
	}
	defer in.kill()
	return h.finish(ctx, s, []*instance{in}, false, o)
}

// chaos runs the chaos schedule while the input is produced, then finishes
// the run.
func (h *harness) chaos(ctx context.Context, s runSpec, gen synth.GenConfig, o *outputs) error {
	cfg := h.cfg
	if err := os.MkdirAll(filepath.Join(h.dir, s.name), 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var (
		wg      sync.WaitGroup
		prodErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, prodErr = produceInput(pctx, cfg.Brokers, gen, s.input, cfg.Events, cfg.Partitions, cfg.Rate)
	}()

	a, b := h.instance(s, "a"), h.instance(s, "b")
	all := []*instance{a, b}
	defer func() {
		for _, in := range all {
			in.kill()
		}
	}()
	live := []*instance{a}
	if err := a.start(); err != nil {
		return err
	}

	// The schedule, as fractions of the time the input takes to produce
	// (the scorers keep up with it, so this is also about the fraction
	// consumed; unlike that fraction it moves on while the scorers stall,
	// so kills also land during restores and takeovers).
	t0 := time.Now()
	produceTime := float64(cfg.Events) / cfg.Rate
	killAt := make([]float64, cfg.Kills)
	for i := range killAt {
		killAt[i] = 0.03 + 0.94*h.rng.Float64()
	}
	slices.Sort(killAt)
	lossAt := 0.2 + 0.15*h.rng.Float64()
	brokerAt := 0.45 + 0.1*h.rng.Float64()
	lossDone, brokerDone := cfg.NoInstanceLoss, !cfg.BrokerRestart
	var (
		lost     *instance
		lostAt   time.Time
		kills    int
		changed  = time.Now()
		uptime   = h.uptime()
		progress float64
		lastLog  time.Time
	)
	deadline := time.Now().Add(cfg.Timeout)
	total := float64(cfg.Events)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: schedule not done within %v: %.1f%% committed, %d of %d kills", cfg.Timeout, 100*progress, kills, len(killAt))
		}
		if err := h.revive(live); err != nil {
			return err
		}
		if n, err := committedSum(ctx, h.adm, s.group, s.input); err == nil {
			progress = float64(n) / total
		}
		at := time.Since(t0).Seconds() / produceTime
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			h.logf("chaos: %.1f%% committed, %d of %d kills, instance loss %v, broker restart %v, live %s",
				100*progress, kills, len(killAt), lossDone && lost == nil, brokerDone, names(live))
		}
		switch {
		case kills < len(killAt) && at >= killAt[kills] && time.Since(changed) >= uptime:
			victim := live[h.rng.IntN(len(live))]
			victim.kill()
			time.Sleep(time.Duration(h.rng.Int64N(int64(500 * time.Millisecond))))
			if err := victim.start(); err != nil {
				return err
			}
			kills++
			h.rep.Kills++
			h.rep.Restarts++
			if progress >= 1 {
				h.rep.KillsAfterInput++
			}
			h.logf("chaos: kill -9 %s and restart (%d of %d) at %.1f%% committed", victim.id, kills, len(killAt), 100*progress)
			changed, uptime = time.Now(), h.uptime()
		case !lossDone && at >= lossAt:
			if err := b.start(); err != nil {
				return err
			}
			live = append(live, b)
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err := b.waitReady(rctx)
			cancel()
			if err != nil {
				h.logf("chaos: second instance not ready: %v", err)
			}
			time.Sleep(time.Second + time.Duration(h.rng.Int64N(int64(2*time.Second))))
			i := h.rng.IntN(len(live))
			lost, lostAt = live[i], time.Now()
			lost.kill()
			live = slices.Delete(live, i, i+1)
			lossDone = true
			h.rep.InstanceLosses++
			h.logf("chaos: instance loss: kill -9 %s, left dead for %v, at %.1f%% committed", lost.id, 2*cfg.SessionTimeout, 100*progress)
			changed = time.Now()
		case lost != nil && time.Since(lostAt) >= 2*cfg.SessionTimeout:
			if err := lost.start(); err != nil {
				return err
			}
			h.rep.Restarts++
			h.logf("chaos: %s back after %v", lost.id, time.Since(lostAt).Round(time.Second))
			live = append(live, lost)
			lost = nil
			changed = time.Now()
		case !brokerDone && at >= brokerAt:
			h.logf("chaos: restarting the broker at %.1f%% committed", 100*progress)
			took, err := h.restartBroker(ctx)
			if err != nil {
				return err
			}
			brokerDone = true
			h.rep.BrokerRestarts++
			h.logf("chaos: broker back after %v", took.Round(time.Second))
			changed = time.Now()
		case kills >= len(killAt) && lossDone && lost == nil && brokerDone && progress >= 1:
			wg.Wait()
			if prodErr != nil {
				return prodErr
			}
			end, err := endOffsets(ctx, h.adm, s.input)
			if err != nil {
				return err
			}
			if !maps.Equal(end, h.input) {
				return fmt.Errorf("chaos: the two inputs differ: end offsets %v and %v", h.input, end)
			}
			return h.finish(ctx, s, live, true, o)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// uptime is how long an instance runs at least before the next kill.
func (h *harness) uptime() time.Duration {
	return 500*time.Millisecond + time.Duration(h.rng.Int64N(int64(2500*time.Millisecond)))
}

// revive restarts the live instances that exited on their own, counting
// them as unexpected exits.
func (h *harness) revive(live []*instance) error {
	for _, in := range live {
		how, exited := in.exitedOnItsOwn()
		if !exited {
			continue
		}
		h.rep.UnexpectedExits = append(h.rep.UnexpectedExits, fmt.Sprintf("%s (%s), restarted", in.id, how))
		h.logf("chaos: %s exited on its own (%s); restarting; its last output:\n%s", in.id, how, in.logTail(1500))
		if err := in.start(); err != nil {
			return err
		}
		h.rep.Restarts++
	}
	return nil
}

// finish waits until the run is done (input committed, no transaction
// open, archive committed past the last record), reads the event topics,
// stops the instances with SIGTERM, and reads the changelog and the
// archive. revive restarts instances that exit on their own; without it
// such an exit is an error.
func (h *harness) finish(ctx context.Context, s runSpec, live []*instance, revive bool, o *outputs) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	tick := func() error {
		if revive {
			return h.revive(live)
		}
		for _, in := range live {
			if how, exited := in.exitedOnItsOwn(); exited {
				return fmt.Errorf("chaos: %s exited on its own (%s); its last output:\n%s", in.id, how, in.logTail(3000))
			}
		}
		return nil
	}
	var lastLog time.Time
	err := h.waitFor(ctx, "input committed", tick, func() (bool, error) {
		o, err := groupOffsets(ctx, h.adm, s.group, s.input)
		if err != nil {
			return false, err
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			h.logf("%s: %.1f%% committed", s.name, 100*float64(o.sum())/float64(h.input.sum()))
		}
		return maps.Equal(o, h.input), nil
	})
	if err != nil {
		return err
	}
	if err := h.waitFor(ctx, "no open transaction", tick, func() (bool, error) {
		return stable(ctx, h.adm, s.outputs()...)
	}); err != nil {
		return err
	}
	if err := o.readEventTopics(ctx, h.cfg.Brokers, s); err != nil {
		return err
	}
	if err := h.waitFor(ctx, "archive committed", tick, func() (bool, error) {
		resp, err := h.adm.FetchOffsets(ctx, s.archiveGroup)
		if err != nil {
			return false, err
		}
		for _, topic := range []string{s.mql, s.dlq, s.scored} {
			for p, last := range o.lastOffsets[topic] {
				c, ok := resp.Lookup(topic, p)
				if !ok || c.Err != nil || c.At < last+1 {
					return false, nil
				}
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, in := range live {
		wg.Go(func() {
			how := in.terminate(60 * time.Second)
			if how != "exit 0" {
				mu.Lock()
				h.rep.FinalExits = append(h.rep.FinalExits, fmt.Sprintf("%s run: %s after SIGTERM: %s", s.name, in.id, how))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := o.readState(ctx, h.cfg.Brokers, s); err != nil {
		return err
	}
	return o.readArchive(s.archiveDir)
}

// waitFor polls cond every 200 ms until it holds, calling tick first each
// time; errors of cond (a broker away) are retried until ctx is done.
func (h *harness) waitFor(ctx context.Context, what string, tick func() error, cond func() (bool, error)) error {
	var lastErr error
	for {
		if err := tick(); err != nil {
			return err
		}
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: waiting for %s: %w (last error: %w)", what, ctx.Err(), lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// restartBroker runs the broker script's down, then up.
func (h *harness) restartBroker(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, port, err := net.SplitHostPort(h.cfg.Brokers[0])
	if err != nil {
		return 0, fmt.Errorf("chaos: broker address %q: %w", h.cfg.Brokers[0], err)
	}
	for _, verb := range []string{"down", "up"} {
		cmd := exec.CommandContext(ctx, "bash", h.script, verb)
		cmd.Env = append(os.Environ(), "KAFKA_PORT="+port)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("chaos: %s %s: %w\n%s", h.script, verb, err, out)
		}
	}
	return time.Since(start), nil
}

// cleanup deletes the run's topics and groups.
func (h *harness) cleanup(specs ...runSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var topics, groups []string
	for _, s := range specs {
		topics = append(topics, s.input)
		topics = append(topics, s.outputs()...)
		groups = append(groups, s.group, s.archiveGroup)
	}
	if _, err := h.adm.DeleteTopics(ctx, topics...); err != nil {
		h.logf("delete topics: %v", err)
	}
	if _, err := h.adm.DeleteGroups(ctx, groups...); err != nil {
		h.logf("delete groups: %v", err)
	}
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func names(ins []*instance) string {
	s := make([]string, len(ins))
	for i, in := range ins {
		s[i] = in.id[strings.LastIndexByte(in.id, '-')+1:]
	}
	return "[" + strings.Join(s, " ") + "]"
}

// machine describes the host: CPUs, CPU model, memory.
func machine() string {
	model, mem := "unknown CPU", "unknown memory"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
					mem = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
				}
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s", runtime.NumCPU(), model, mem)
}
