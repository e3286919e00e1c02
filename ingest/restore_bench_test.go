package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

// BenchmarkRestore measures state restore on partition assignment: a
// compacted changelog of LEADSCORE_RESTORE_LEADS leads (default 200000) over
// 6 partitions on the test broker (real Kafka when one is found), read back
// into engines by restore. It reports leads/s and the heap held per lead.
//
//	go test ./ingest -run '^$' -bench Restore -benchtime 1x
//	LEADSCORE_RESTORE_LEADS=10000000 go test ./ingest -run '^$' -bench Restore -benchtime 1x -timeout 30m
//
// Besides the time, it reports the process's CPU time during the restores
// (cpu-s, of which sys-s in the kernel: page faults on fresh memory, on
// this VM a large share at 10M leads), the collections and the runtime's
// estimate of their CPU time, and the largest heap sampled every 10 ms
// (peak-heap-MB, garbage included). On a shared machine, compare cpu-s.
//
// LEADSCORE_RESTORE_PROFILE=DIR writes profiles of the restores alone
// (not of writing the changelog) to DIR: cpu.pprof, and allocs.pprof
// taken before and after them (allocs-before.pprof, allocs-after.pprof:
// go tool pprof -sample_index=alloc_space -base DIR/allocs-before.pprof
// DIR/allocs-after.pprof).
func BenchmarkRestore(b *testing.B) {
	n := 200_000
	if v := os.Getenv("LEADSCORE_RESTORE_LEADS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	const parts = 6
	c := kafkatest.Broker(b)
	compact := "compact"
	topic := c.Topic(b, parts, map[string]*string{"cleanup.policy": &compact})
	cl, err := kgo.NewClient(append(c.Opts(), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()

	// Leads with a realistic state: a few touchpoints each, traits, an id.
	model := models.Default()
	eng := scorer.NewEngine(model)
	t0 := time.Now().Add(-72 * time.Hour).UnixMilli()
	var res scorer.Result
	types := []string{"page_view", "email_open", "email_click", "webinar_attended", "form_submit"}
	ctx := context.Background()
	var produced int64
	start := time.Now()
	for i := range n {
		lead := fmt.Sprintf("lead-%08d", i)
		for j := range 3 {
			tp := scorer.Touchpoint{
				EventID: fmt.Sprintf("%s-%d", lead, j), LeadID: lead, AccountID: "acme.test",
				Type: types[(i+j)%len(types)], Channel: "web", OccurredAt: t0 + int64(i%86400000) + int64(j)*60000,
				Traits: []scorer.Attr{{Key: "title", Value: "VP Marketing"}, {Key: "company_size", Value: "800"}},
			}
			eng.Apply(&tp, time.Now().UnixMilli(), &res)
		}
		state, ok := eng.EncodeLead(lead, nil)
		if !ok {
			b.Fatal("lead not found")
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(lead), Value: state, Partition: int32(i % parts)}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
		produced += int64(len(state))
		if i%100_000 == 99_999 {
			eng = scorer.NewEngine(model) // keep the builder's memory bounded
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("changelog: %d leads, %.1f MB of state, written in %v", n, float64(produced)/1e6, time.Since(start).Round(time.Millisecond))

	cfg := Config{Kafka: c.Opts(), Model: model, Topics: Topics{Touchpoints: topic + ".in", State: topic}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	m := newMetrics(nil, &Pipeline{})
	log := slog.New(slog.DiscardHandler)
	all := make([]int32, parts)
	for i := range all {
		all[i] = int32(i)
	}
	profDir := os.Getenv("LEADSCORE_RESTORE_PROFILE")
	if profDir != "" {
		writeAllocsProfile(b, filepath.Join(profDir, "allocs-before.pprof"))
		f, err := os.Create(filepath.Join(profDir, "cpu.pprof"))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
			writeAllocsProfile(b, filepath.Join(profDir, "allocs-after.pprof"))
		}()
	}
	b.Logf("restore starts %.1fs after the process", time.Since(processStart).Seconds())
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		gcBefore := readRuntimeMetrics()
		userBefore, sysBefore, cpuOK := processCPU()
		peak := sampleHeapPeak()
		t := time.Now()
		engines, stats, err := restore(ctx, cfg, log, m, all)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(t)
		userAfter, sysAfter, _ := processCPU()
		gcAfter := readRuntimeMetrics()
		peakHeap := peak()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if stats.leads != n {
			b.Fatalf("restored %d leads, want %d", stats.leads, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "leads/s")
		b.ReportMetric(took.Seconds(), "restore-s")
		if cpuOK {
			b.ReportMetric((userAfter + sysAfter - userBefore - sysBefore).Seconds(), "cpu-s")
			b.ReportMetric((sysAfter - sysBefore).Seconds(), "sys-s")
		}
		b.ReportMetric(gcAfter[0]-gcBefore[0], "gc-cycles")
		b.ReportMetric(gcAfter[1]-gcBefore[1], "gc-cpu-s")
		b.ReportMetric(float64(peakHeap)/1e6, "peak-heap-MB")
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heap-bytes/lead")
		runtime.KeepAlive(engines)
	}
}

// readRuntimeMetrics returns the GC cycles so far and the runtime's
// estimate of the CPU seconds spent in GC.
func readRuntimeMetrics() [2]float64 {
	s := []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	rtmetrics.Read(s)
	return [2]float64{float64(s[0].Value.Uint64()), s[1].Value.Float64()}
}

// sampleHeapPeak samples the bytes of heap objects (live or not yet
// collected) every 10 ms until the returned function is called, which
// returns the largest sample.
func sampleHeapPeak() func() uint64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}

// processCPU returns the CPU time the process has used in user space and
// in the kernel, from /proc/self/stat; false where there is none.
func processCPU() (user, sys time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, false
	}
	// Fields after the command name (which is in parentheses and may hold
	// spaces): utime and stime are the 12th and 13th, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime) * time.Second / ticksPerSecond, time.Duration(stime) * time.Second / ticksPerSecond, true
}

// processStart dates the restores in a GODEBUG=gctrace=1 log (whose times
// count from the process start).
var processStart = time.Now()

func writeAllocsProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
