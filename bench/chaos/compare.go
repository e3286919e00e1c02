package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Tally compares what a chaos run wrote with what the reference run wrote,
// item by item (an item is an MQL event, an archive row, a lead).
type Tally struct {
	// Expected is the number of distinct items of the reference run,
	// ExpectedDuplicated the number of its extra copies (a bug of the
	// reference run itself, so also a failure).
	Expected           int64
	ExpectedDuplicated int64
	// Seen is the number of items of the chaos run, copies included.
	Seen int64
	// Duplicated is the number of extra copies in the chaos run;
	// Missing the expected items it lacks; Unexpected its items the
	// reference lacks; Mismatched the items present in both whose
	// contents differ.
	Duplicated int64
	Missing    int64
	Unexpected int64
	Mismatched int64
	// Examples describes a few of the differences.
	Examples []string
}

// OK reports whether the chaos run matched the reference exactly.
func (t Tally) OK() bool {
	return t.ExpectedDuplicated == 0 && t.Duplicated == 0 && t.Missing == 0 && t.Unexpected == 0 && t.Mismatched == 0
}

const maxExamples = 5

func (t *Tally) example(format string, args ...any) {
	if len(t.Examples) < maxExamples {
		t.Examples = append(t.Examples, fmt.Sprintf(format, args...))
	}
}

// multiset collects the items of one run: the value of each key's first
// copy and the number of copies.
type multiset[K comparable, V any] struct {
	first map[K]V
	n     map[K]int32
}

func newMultiset[K comparable, V any]() *multiset[K, V] {
	return &multiset[K, V]{first: map[K]V{}, n: map[K]int32{}}
}

func (m *multiset[K, V]) add(k K, v V) {
	if m.n[k] == 0 {
		m.first[k] = v
	}
	m.n[k]++
}

func (m *multiset[K, V]) total() int64 {
	var t int64
	for _, c := range m.n {
		t += int64(c)
	}
	return t
}

// compare tallies got against want; equal says whether two values match.
func compare[K comparable, V any](want, got *multiset[K, V], equal func(a, b V) bool) Tally {
	t := Tally{Expected: int64(len(want.n)), Seen: got.total()}
	for k, c := range want.n {
		t.ExpectedDuplicated += int64(c - 1)
		if c > 1 {
			t.example("reference has %v %d times", k, c)
		}
		gc := got.n[k]
		switch {
		case gc == 0:
			t.Missing++
			t.example("missing %v: %+v", k, want.first[k])
		case !equal(want.first[k], got.first[k]):
			t.Mismatched++
			t.example("mismatch %v: want %+v, got %+v", k, want.first[k], got.first[k])
		}
		if gc > 1 {
			t.Duplicated += int64(gc - 1)
			t.example("duplicated %v: %d copies", k, gc)
		}
	}
	for k, c := range got.n {
		if want.n[k] == 0 {
			t.Unexpected++
			t.Duplicated += int64(c - 1)
			t.example("unexpected %v: %+v", k, got.first[k])
		}
	}
	sort.Strings(t.Examples)
	return t
}

// near reports whether a and b agree to a relative 1e-9 (SCORING.md 3).
func near(a, b float64) bool {
	if a == b {
		return true
	}
	d := math.Abs(a - b)
	return d <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) || d < 1e-12
}

// Report is the outcome of a harness run.
type Report struct {
	Events, Leads, Partitions int
	// Start is when the run began; Machine describes the host.
	Start   time.Time
	Machine string
	// Dir is the work directory (archives, process logs), kept when the
	// run failed or was given; "" when it was removed.
	Dir string

	// Chaos done during the chaos run.
	Kills           int // kill -9 followed by a restart
	KillsAfterInput int // of those, after every input record was committed
	Restarts        int // process starts after the first
	InstanceLosses  int // instances left dead past the session timeout
	BrokerRestarts  int
	UnexpectedExits []string // processes that exited on their own, and how

	// Wall times.
	ProduceWall, ReferenceWall, ChaosWall, CompareWall, TotalWall time.Duration

	// Comparisons.
	MQL       Tally // MQL topic, read_committed
	LeadState Tally // latest changelog state per lead, byte for byte
	Scores    Tally // engagement and fit at a common time, relative 1e-9
	Archive   map[string]Tally
	Coverage  []string // archive rows vs topic records, per run and table, when they differ

	// FinalExits are the SIGTERM exits that were not "exit 0".
	FinalExits []string
}

// Failures lists what is wrong; empty means exactly once held.
func (r *Report) Failures() []string {
	var f []string
	check := func(name string, t Tally) {
		if !t.OK() {
			f = append(f, fmt.Sprintf("%s: %d duplicated, %d missing, %d unexpected, %d mismatched, %d duplicated in the reference",
				name, t.Duplicated, t.Missing, t.Unexpected, t.Mismatched, t.ExpectedDuplicated))
		}
	}
	check("mql topic", r.MQL)
	check("lead state", r.LeadState)
	check("scores", r.Scores)
	for _, table := range tables {
		check("archive "+table, r.Archive[table])
	}
	f = append(f, r.Coverage...)
	f = append(f, r.FinalExits...)
	if r.MQL.Expected == 0 {
		f = append(f, "the reference run emitted no MQL event: the input exercises too little")
	}
	return f
}

// WriteTable prints the summary.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "events\t%d (%d leads, %d partitions)\n", r.Events, r.Leads, r.Partitions)
	fmt.Fprintf(tw, "kills (kill -9 + restart)\t%d (%d after the input was consumed)\n", r.Kills, r.KillsAfterInput)
	fmt.Fprintf(tw, "restarts\t%d\n", r.Restarts)
	fmt.Fprintf(tw, "instance loss\t%d\n", r.InstanceLosses)
	fmt.Fprintf(tw, "broker restarts\t%d\n", r.BrokerRestarts)
	fmt.Fprintf(tw, "unexpected exits\t%d\n", len(r.UnexpectedExits))
	fmt.Fprintf(tw, "wall time\tproduce %v, reference %v, chaos %v, compare %v, total %v\n",
		r.ProduceWall.Round(time.Second), r.ReferenceWall.Round(time.Second), r.ChaosWall.Round(time.Second),
		r.CompareWall.Round(time.Second), r.TotalWall.Round(time.Second))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "output\texpected\tseen\tduplicated\tmissing\tunexpected\tmismatched\t")
	row := func(name string, t Tally) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, t.Expected, t.Seen, t.Duplicated, t.Missing, t.Unexpected, t.Mismatched)
	}
	row("MQL topic", r.MQL)
	row("lead state (bytes)", r.LeadState)
	row("lead scores (1e-9)", r.Scores)
	for _, table := range tables {
		row("archive "+table, r.Archive[table])
	}
	tw.Flush()
	var notes []string
	for _, e := range r.UnexpectedExits {
		notes = append(notes, "unexpected exit: "+e)
	}
	for _, t := range []struct {
		name string
		t    Tally
	}{{"mql", r.MQL}, {"lead state", r.LeadState}, {"scores", r.Scores}} {
		for _, e := range t.t.Examples {
			notes = append(notes, t.name+": "+e)
		}
	}
	for _, table := range tables {
		for _, e := range r.Archive[table].Examples {
			notes = append(notes, "archive "+table+": "+e)
		}
	}
	if fs := r.Failures(); len(fs) > 0 {
		notes = append(notes, "FAIL: "+strings.Join(fs, "; "))
	} else {
		notes = append(notes, "OK: exactly once held")
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}
