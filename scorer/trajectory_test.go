package scorer

// Trajectory tests: testdata/*.traj are "events at times -> expected
// scores" files. Each file is a YAML model, a line "----", then one step a
// line. Blank lines and lines starting with '#' are comments (write the
// hand arithmetic there). A step is
//
//	<time> <lead> <event_id> <type> [key=value ...] -> <expectation>
//	score <time> <lead> -> e=<engagement> fit=<fit>
//
// <time> is an offset from 2026-01-05T00:00:00Z (a Monday, midnight UTC)
// in the models duration syntax with an optional leading '-': 0s, 36h,
// 1d12h, -2h. <lead> is a lead id, or anon:<id> for an anonymous id. The
// keys are ch (channel), camp (campaign), acct (account id), now (wall
// clock as a <time>; default the event time), p.<name> (a property) and
// t.<name> (a trait). Values cannot contain spaces.
//
// The expectation of a touchpoint is its outcome (scored, duplicate,
// too_late, future), then for every outcome rule=<winning rule, omitted
// when none>, pts=<points applied>, e=<E_ref after>, fit=<fit after> and
// mql=<sequence> when it triggered an MQL. Numbers must agree to a relative
// 1e-9. `go test ./scorer -run Trajectory -rewrite` rewrites every
// expectation with what the engine does (then review the diff: the
// comments say what it should be).

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/leadscore/leadscore/models"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expectations in testdata/*.traj")

func TestTrajectory(t *testing.T) {
	files, err := filepath.Glob("testdata/*.traj")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("only %d trajectory files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTrajectory(t, f) })
	}
}

func runTrajectory(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	sep := strings.Index(text, "\n----\n")
	if sep < 0 {
		t.Fatalf("%s: no ---- line after the model", path)
	}
	m, err := models.Parse(path, []byte(text[:sep+1]))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(m)
	head := text[:sep+6]
	lines := strings.Split(strings.TrimSuffix(text[sep+6:], "\n"), "\n")
	modelLines := strings.Count(head, "\n")
	steps := 0
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, modelLines+i+1)
		left, want, ok := strings.Cut(line, "->")
		if !ok {
			t.Fatalf("%s: no '->' in %q", where, line)
		}
		got, err := step(e, strings.Fields(left))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		steps++
		if *rewrite {
			lines[i] = strings.TrimRight(left, " ") + " -> " + got
			continue
		}
		if err := sameExpectation(got, strings.TrimSpace(want)); err != nil {
			t.Errorf("%s: %v\n\tgot  %s\n\twant %s", where, err, got, strings.TrimSpace(want))
		}
	}
	if steps == 0 {
		t.Fatalf("%s: no steps", path)
	}
	if *rewrite {
		out := head + strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// step runs one line's left side and formats the engine's answer.
func step(e *Engine, f []string) (string, error) {
	if len(f) == 3 && f[0] == "score" {
		at, err := offset(f[1])
		if err != nil {
			return "", err
		}
		eng, fit, ok := e.Score(f[2], at)
		if !ok {
			return "unknown", nil
		}
		return fmt.Sprintf("e=%s fit=%s", num(eng), num(fit)), nil
	}
	if len(f) < 4 {
		return "", fmt.Errorf("want <time> <lead> <event_id> <type> [key=value ...], got %q", f)
	}
	at, err := offset(f[0])
	if err != nil {
		return "", err
	}
	tp := &Touchpoint{EventID: f[2], Type: f[3], OccurredAt: at}
	if anon, ok := strings.CutPrefix(f[1], "anon:"); ok {
		tp.AnonymousID = anon
	} else {
		tp.LeadID = f[1]
	}
	now := at
	for _, kv := range f[4:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", fmt.Errorf("want key=value, got %q", kv)
		}
		switch {
		case k == "ch":
			tp.Channel = v
		case k == "camp":
			tp.Campaign = v
		case k == "acct":
			tp.AccountID = v
		case k == "now":
			if now, err = offset(v); err != nil {
				return "", err
			}
		case strings.HasPrefix(k, "p."):
			tp.Props = append(tp.Props, Attr{k[2:], v})
		case strings.HasPrefix(k, "t."):
			tp.Traits = append(tp.Traits, Attr{k[2:], v})
		default:
			return "", fmt.Errorf("unknown key %q", k)
		}
	}
	var r Result
	e.Apply(tp, now, &r)
	var b strings.Builder
	b.WriteString(r.Outcome.String())
	if r.Rule != "" {
		b.WriteString(" rule=" + r.Rule)
	}
	fmt.Fprintf(&b, " pts=%s e=%s fit=%s", num(r.Points), num(r.Engagement), num(r.Fit))
	if r.Qualified {
		fmt.Fprintf(&b, " mql=%d", r.MQL.Sequence)
	}
	return b.String(), nil
}

func offset(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	d, err := models.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", s, err)
	}
	if neg {
		d = -d
	}
	return t0 + d.Milliseconds(), nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// sameExpectation compares two expectation lines: words equal, except
// numbers after '=' which must agree to a relative 1e-9.
func sameExpectation(got, want string) error {
	g, w := strings.Fields(got), strings.Fields(want)
	if len(g) != len(w) {
		return fmt.Errorf("different fields")
	}
	for i := range g {
		if g[i] == w[i] {
			continue
		}
		gk, gv, _ := strings.Cut(g[i], "=")
		wk, wv, _ := strings.Cut(w[i], "=")
		if gk != wk || gk == "rule" || gk == "mql" {
			return fmt.Errorf("%s differs", g[i])
		}
		gx, err1 := strconv.ParseFloat(gv, 64)
		wx, err2 := strconv.ParseFloat(wv, 64)
		if err1 != nil || err2 != nil || !near(gx, wx) {
			return fmt.Errorf("%s: got %s, want %s", gk, gv, wv)
		}
	}
	return nil
}
