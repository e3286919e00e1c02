package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
)

// TestReadmeQuickStart produces the README's quick-start records (the
// "key:value" lines of its kcat heredoc) to `leadscore run` and checks that
// the MQL event that comes out is the README's example in "Output: MQL
// events", field for field but emitted_at: the example cannot drift from
// what the code does.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	_, heredoc, ok := strings.Cut(text, "-t leadscore.touchpoints -K: -P <<'EOF'\n")
	heredoc, _, ok2 := strings.Cut(heredoc, "\nEOF\n")
	if !ok || !ok2 {
		t.Fatal("README.md: no kcat heredoc of quick-start records")
	}
	_, example, ok := strings.Cut(text, "## Output: MQL events")
	_, example, ok2 = strings.Cut(example, "```json\n")
	example, _, ok3 := strings.Cut(example, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md: no JSON example under \"Output: MQL events\"")
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(example), &want); err != nil {
		t.Fatalf("README.md's MQL example is not JSON: %v", err)
	}

	cluster := kafkatest.Fake(t)
	e := newE2E(t)
	pl := newPipeline(t, cluster.Admin(t), "leadscore-readme-")
	maddr := freeAddr(t)
	p := e.startLeadscore(append([]string{"run", "--brokers", strings.Join(cluster.Brokers, ",")}, pl.runArgs("", maddr)...)...)
	e.waitReady(p, "http://"+maddr+"/readyz", 45*time.Second)

	cl, err := kgo.NewClient(append(cluster.Opts(), kgo.DefaultProduceTopic(pl.topics["touchpoints"]),
		kgo.ConsumeTopics(pl.topics["mql"]), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lines := strings.Split(heredoc, "\n")
	for _, line := range lines {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("quick-start record %q is not key:value", line)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitAllScored(p, "http://"+maddr+"/metrics", len(lines))

	var got map[string]any
	for got == nil {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal("no MQL event from the README's quick-start records")
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got != nil {
				t.Errorf("a second MQL event: %s", r.Value)
				return
			}
			if err := json.Unmarshal(r.Value, &got); err != nil {
				t.Fatalf("MQL event %s: %v", r.Value, err)
			}
		})
	}
	delete(got, "emitted_at")
	delete(want, "emitted_at")
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("the quick start's MQL event differs from README.md's example:\n got %s\nwant %s", g, w)
	}
	if code, took := p.terminate(30 * time.Second); code != 0 {
		t.Errorf("leadscore run exited with %d, %v after SIGTERM", code, took)
	}
}
