package scorer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/models"
)

// TestStateSizeBound pins README's bound on a lead's changelog record
// ("Against an existing cluster"): about 50 KB plus about 1 KB per trait
// the model's fit rules read and per capped rule, so that an output topic
// of Kafka's default 1 MiB holds any model with fewer than about 900 of
// them. The lead here is as large as the limits let it be: every id,
// type, channel and campaign at its longest (ingest's limits), 2048
// remembered event ids, every contributor group, cap usage of every
// capped rule on every day max_lateness keeps, every fit trait at
// ingest.MaxFitTraitBytes (1,024), names of 100 bytes.
func TestStateSizeBound(t *testing.T) {
	const capped, fitTraits, nameLen = 20, 10, 100
	name := func(prefix string, i int) string {
		s := fmt.Sprintf("%s-%d-", prefix, i)
		return s + strings.Repeat("n", nameLen-len(s))
	}
	typ := func(i int) string { return fmt.Sprintf("t%d-", i) + strings.Repeat("y", 120) }
	var y strings.Builder
	y.WriteString("name: big\nversion: \"1\"\nhalf_life: 14d\nmax_lateness: 7d\ndedupe_window: 24h\n" +
		"thresholds: {mql: 1e9, rearm: 1}\nrules:\n")
	for i := range capped {
		fmt.Fprintf(&y, "  - {name: %s, type: %s, points: 1, cap: 1e6}\n", name("rule", i), typ(i))
	}
	y.WriteString("fit:\n")
	for i := range fitTraits {
		fmt.Fprintf(&y, "  - {trait: %s, glob: \"*\", points: 1}\n", name("trait", i))
	}
	m, err := models.Parse("big.yaml", []byte(y.String()))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(m)
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	var traits []Attr
	for i := range fitTraits {
		traits = append(traits, Attr{Key: name("trait", i), Value: long('v', 1024)})
	}
	day := int64(24 * time.Hour / time.Millisecond)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	now := t0 + 9*day
	var res Result
	const n = 4000
	for i := range n {
		id := fmt.Sprintf("%d-", i)
		tp := Touchpoint{
			EventID: id + long('e', 128-len(id)), LeadID: long('k', 256), AnonymousID: long('a', 256),
			AccountID: long('c', 256), Type: typ(i % capped),
			Channel: fmt.Sprintf("%d-", i%7) + long('h', 250), Campaign: fmt.Sprintf("%d-", i%5) + long('p', 250),
			OccurredAt: t0 + int64(i)*8*day/n, Traits: traits,
		}
		e.Apply(&tp, now, &res)
		if res.Outcome != Scored {
			t.Fatalf("touchpoint %d: %v", i, res.Outcome)
		}
	}
	size := 0
	e.AppendDirty(func(_ string, state []byte) { size = len(state) })
	e.Commit()
	bound := 50_000 + 1024*(capped+fitTraits)
	t.Logf("largest state: %d bytes (bound %d: 50 KB + 1 KB for each of %d capped rules and %d fit traits)", size, bound, capped, fitTraits)
	if size == 0 || size > bound {
		t.Errorf("a lead's state is %d bytes, over README's bound of %d", size, bound)
	}
}
