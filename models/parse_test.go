package models

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// base is a minimal valid model; tests append to or edit it. Line numbers
// in the cases below count from its first line.
const base = `name: acme
version: "2"
thresholds: {mql: 100}
rules:
  - type: page_view
    points: 1
`

func TestParseMinimalDefaults(t *testing.T) {
	m, err := Parse("acme.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	want := &Model{
		Name:            "acme",
		Version:         "2",
		HalfLife:        14 * 24 * time.Hour,
		MaxLateness:     7 * 24 * time.Hour,
		MaxFutureSkew:   5 * time.Minute,
		DedupeWindow:    24 * time.Hour,
		TopContributors: 5,
		Thresholds:      Thresholds{MQL: 100, Rearm: 50},
		Rules:           []Rule{{Name: "page_view", Type: "page_view", Points: 1}},
		Fit:             nil,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got  %+v\nwant %+v", m, want)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate of a parsed model: %v", err)
	}
}

func TestParseFull(t *testing.T) {
	src := `name: full
version: 1.10
half_life: 1d12h
max_lateness: 36h
max_future_skew: 90s
dedupe_window: 2d
top_contributors: 3
thresholds: {mql: 80.5, fit_min: -5, rearm: 20, cooldown: 30d}
rules:
  - name: pricing-page
    type: page_view
    channel: web
    campaign: spring
    properties: {url: "*/pricing*", ref: "g?ogle", a: "*"}
    points: 15
    cap: 30
  - type: page_view
    properties:
      zeta: "1"
      alpha: 2
    points: -0.5
fit:
  - {name: senior-title, trait: title, equals: [VP, Director, 3], points: 15}
  - {trait: company_size, min: 200, max: 5000, points: 10}
  - {trait: employees, min: 1e3, points: 1}
  - {trait: industry, glob: "*software*", points: 5}
`
	m, err := Parse("full.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	want := &Model{
		Name:            "full",
		Version:         "1.10",
		HalfLife:        36 * time.Hour,
		MaxLateness:     36 * time.Hour,
		MaxFutureSkew:   90 * time.Second,
		DedupeWindow:    48 * time.Hour,
		TopContributors: 3,
		Thresholds:      Thresholds{MQL: 80.5, FitMin: f(-5), Rearm: 20, Cooldown: 30 * 24 * time.Hour},
		Rules: []Rule{
			{
				Name: "pricing-page", Type: "page_view", Channel: "web", Campaign: "spring",
				// File order, not sorted.
				Properties: []PropertyMatch{{"url", "*/pricing*"}, {"ref", "g?ogle"}, {"a", "*"}},
				Points:     15, Cap: 30,
			},
			{
				Name: "page_view/zeta=1/alpha=2", Type: "page_view",
				Properties: []PropertyMatch{{"zeta", "1"}, {"alpha", "2"}},
				Points:     -0.5,
			},
		},
		Fit: []FitRule{
			{Name: "senior-title", Trait: "title", Equals: []string{"VP", "Director", "3"}, Points: 15},
			{Name: "company_size=[200,5000)", Trait: "company_size", Min: f(200), Max: f(5000), Points: 10},
			{Name: "employees=[1000,inf)", Trait: "employees", Min: f(1000), Points: 1},
			{Name: "industry~*software*", Trait: "industry", Glob: "*software*", Points: 5},
		},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got  %+v\nwant %+v", m, want)
	}
	if got, want := m.PropertyKeys(), []string{"a", "alpha", "ref", "url", "zeta"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PropertyKeys = %q, want %q", got, want)
	}
	if got, want := m.TraitKeys(), []string{"company_size", "employees", "industry", "title"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TraitKeys = %q, want %q", got, want)
	}
}

func TestParseAliases(t *testing.T) {
	src := `name: a
version: "1"
thresholds: {mql: 10}
rules:
  - &pv {type: page_view, points: 1}
  - {type: page_view, properties: &p {url: "*/x"}, points: 2}
  - {type: email_click, properties: *p, points: 3}
fit:
  - {trait: t, equals: &vals [a, b], points: 1}
  - {trait: u, equals: *vals, points: 1}
`
	m, err := Parse("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Rules[2].Properties; len(got) != 1 || got[0] != (PropertyMatch{"url", "*/x"}) {
		t.Errorf("aliased properties = %v", got)
	}
	if got := m.Fit[1].Equals; !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("aliased equals = %v", got)
	}
}

// TestParseErrors checks that every validation error names the line and the
// field, and says what is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// want lists, per expected error, "line: field: message part".
		want []string
	}{
		{"points not a number", base + "  - {type: a, points: ten}\n",
			[]string{`7: rules[1].points: must be a number, got "ten"`}},
		{"quoted number", base + "  - {type: a, points: \"10\"}\n",
			[]string{`7: rules[1].points: must be a number, got "10"`}},
		{"points NaN", base + "  - {type: a, points: .nan}\n",
			[]string{`7: rules[1].points: must be a finite number`}},
		{"points Inf", base + "  - {type: a, points: -.inf}\n",
			[]string{`7: rules[1].points: must be a finite number`}},
		{"points too large", base + "  - {type: a, points: 1e308}\n",
			[]string{`7: rules[1].points: must be between -1000000 and 1000000, got 1e+308`}},
		{"fit points too small", base + "fit:\n  - {trait: t, glob: a, points: -1000001}\n",
			[]string{`8: fit[0].points: must be between -1000000 and 1000000, got -1.000001e+06`}},
		{"unknown rule key", base + "  - type: a\n    poitns: 3\n    points: 1\n",
			[]string{`8: rules[1].poitns: unknown key (did you mean "points"?)`}},
		{"unknown top key", base + "halflife: 3d\n",
			[]string{`7: halflife: unknown key (did you mean "half_life"?)`}},
		{"unknown threshold key", strings.Replace(base, "{mql: 100}", "{mql: 100, mlq: 3}", 1),
			[]string{`3: thresholds.mlq: unknown key`}},
		{"missing name", strings.Replace(base, "name: acme\n", "", 1),
			[]string{`1: name: required`}},
		{"empty name", strings.Replace(base, "name: acme", "name: ''", 1),
			[]string{`1: name: must not be empty`}},
		{"missing version", strings.Replace(base, "version: \"2\"\n", "", 1),
			[]string{`1: version: required`}},
		{"missing rules", "name: a\nversion: b\nthresholds: {mql: 1}\n",
			[]string{`1: rules: required`}},
		{"empty rules", "name: a\nversion: b\nthresholds: {mql: 1}\nrules: []\n",
			[]string{`4: rules: must list at least one rule`}},
		{"rules not a list", "name: a\nversion: b\nthresholds: {mql: 1}\nrules: {type: x}\n",
			[]string{`4: rules: must be a list of rules, got a mapping`}},
		{"missing thresholds", strings.Replace(base, "thresholds: {mql: 100}\n", "", 1),
			[]string{`1: thresholds: required`}},
		{"missing mql", strings.Replace(base, "{mql: 100}", "{rearm: 3}", 1),
			[]string{`3: thresholds.mql: required`}},
		{"mql zero", strings.Replace(base, "{mql: 100}", "{mql: 0}", 1),
			[]string{`3: thresholds.mql: must be positive`}},
		{"rearm equal to mql", strings.Replace(base, "{mql: 100}", "{mql: 100, rearm: 100}", 1),
			[]string{`3: thresholds.rearm: must be below mql`}},
		{"rearm above mql", strings.Replace(base, "{mql: 100}", "{mql: 100,\n  rearm: 120}", 1),
			[]string{`4: thresholds.rearm: must be below mql`}},
		{"negative cooldown", strings.Replace(base, "{mql: 100}", "{mql: 100, cooldown: -1h}", 1),
			[]string{`3: thresholds.cooldown: must not be negative`}},
		{"fit_min string", strings.Replace(base, "{mql: 100}", "{mql: 100, fit_min: high}", 1),
			[]string{`3: thresholds.fit_min: must be a number, got "high"`}},
		{"half_life zero", base + "half_life: 0\n",
			[]string{`7: half_life: must be positive, got 0`}},
		{"half_life negative", base + "half_life: -2d\n",
			[]string{`7: half_life: must be positive, got -2d`}},
		{"duration without unit", base + "half_life: 14\n",
			[]string{`7: half_life: must be a duration with a unit`}},
		{"duration bad unit", base + "max_lateness: 3w\n",
			[]string{`7: max_lateness: invalid duration "3w": unknown unit "w"`}},
		{"negative dedupe window", base + "dedupe_window: -1s\n",
			[]string{`7: dedupe_window: must not be negative`}},
		{"top_contributors zero", base + "top_contributors: 0\n",
			[]string{`7: top_contributors: must be between 1 and 1000, got 0`}},
		{"top_contributors fraction", base + "top_contributors: 2.5\n",
			[]string{`7: top_contributors: must be a whole number, got "2.5"`}},
		{"rule without type", base + "  - {points: 3}\n",
			[]string{`7: rules[1].type: required`}},
		{"rule with empty type", base + "  - {type: '', points: 3}\n",
			[]string{`7: rules[1].type: must not be empty`}},
		{"rule without points", base + "  - {type: x}\n",
			[]string{`7: rules[1].points: required`}},
		{"rule not a mapping", base + "  - page_view\n",
			[]string{`7: rules[1]: must be a mapping, got "page_view"`}},
		{"negative cap", base + "  - {type: a, points: 2, cap: -1}\n",
			[]string{`7: rules[1].cap: must not be negative`}},
		{"cap on negative rule", base + "  - {type: a, points: -2, cap: 5}\n",
			[]string{`7: rules[1].cap: caps limit positive points only`}},
		{"duplicate rule name", base + "  - {name: x, type: a, points: 1}\n  - {name: x, type: b, points: 1}\n",
			[]string{`8: rules[2].name: duplicate rule name "x", first used by rules[1]`}},
		{"same conditions", base + "  - {type: page_view, points: 2}\n",
			[]string{`7: rules[1]: same conditions as rules[0], so this rule could never match`}},
		{"property not scalar", base + "  - {type: a, points: 1, properties: {url: [a]}}\n",
			[]string{`7: rules[1].properties.url: must be a string, got a list`}},
		{"empty property glob", base + "  - {type: a, points: 1, properties: {url: ''}}\n",
			[]string{`7: rules[1].properties.url: must not be empty`}},
		{"duplicate property", base + "  - type: a\n    points: 1\n    properties:\n      url: a\n      url: b\n",
			[]string{`11: rules[1].properties.url: duplicate key (first at line 10)`}},
		{"odd key quoted", base + "  - {type: a, points: 1, properties: {\"utm source\": x, '': y}}\n",
			[]string{`7: rules[1].properties: a property name must not be empty`}},
		{"newline in key", base + "\"a\\nb\": 1\n",
			[]string{`7: ["a\nb"]: unknown key`}},
		{"duplicate top key", base + "name: other\n",
			[]string{`7: name: duplicate key (first at line 1)`}},
		{"fit without matcher", base + "fit:\n  - {trait: t, points: 1}\n",
			[]string{`8: fit[0]: set exactly one of equals, glob, or min/max; found 0`}},
		{"fit with two matchers", base + "fit:\n  - {trait: t, glob: a, min: 1, points: 1}\n",
			[]string{`8: fit[0]: set exactly one of equals, glob, or min/max; found 2`}},
		{"fit min >= max", base + "fit:\n  - {trait: t, min: 5, max: 5, points: 1}\n",
			[]string{`8: fit[0].max: must be above min (5), got 5`}},
		{"fit empty glob", base + "fit:\n  - {trait: t, glob: '', points: 1}\n",
			[]string{`8: fit[0].glob: must not be empty`}},
		{"fit empty equals", base + "fit:\n  - {trait: t, equals: [], points: 1}\n",
			[]string{`8: fit[0].equals: must list at least one value`}},
		{"fit equals not list", base + "fit:\n  - {trait: t, equals: VP, points: 1}\n",
			[]string{`8: fit[0].equals: must be a list of values`}},
		{"fit empty equals value", base + "fit:\n  - trait: t\n    equals:\n      - a\n      - ''\n    points: 1\n",
			[]string{`11: fit[0].equals[1]: must not be empty`}},
		{"fit missing trait", base + "fit:\n  - {glob: a, points: 1}\n",
			[]string{`8: fit[0].trait: required`}},
		{"fit NaN points", base + "fit:\n  - {trait: t, glob: a, points: .NaN}\n",
			[]string{`8: fit[0].points: must be a finite number`}},
		{"fit duplicate name", base + "fit:\n  - {trait: t, glob: a, points: 1}\n  - {trait: t, glob: a, points: 2}\n",
			[]string{`9: fit[1].name: duplicate fit rule name "t~a", first used by fit[0]`}},
		{"fit not a list", base + "fit: {trait: t}\n",
			[]string{`7: fit: must be a list of fit rules, got a mapping`}},
		{"top level list", "- a\n- b\n",
			[]string{`1: must be a mapping, got a list`}},
		{"merge key", base + "x: &x {mql: 1}\n",
			[]string{`7: x: unknown key`}},
		{"syntax error", "name: a\nversion: b\nrules: [\n",
			[]string{`invalid YAML`}},
		{"two documents", base + "---\nname: b\n",
			[]string{`7: more than one YAML document`}},
		{"empty file", "", []string{`empty model`}},
		{"comments only", "# nothing\n", []string{`empty model`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("acme.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; model %+v", m)
			}
			if m != nil {
				t.Errorf("model returned with error %v", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], "models: acme.yaml") {
					t.Errorf("error %q does not name the file", lines[i])
				}
				if !strings.Contains(lines[i], "acme.yaml:"+w) && !strings.Contains(lines[i], w) {
					t.Errorf("error %q\nwant it to contain %q", lines[i], "acme.yaml:"+w)
				}
				if line, _, ok := strings.Cut(w, ":"); ok {
					if _, err := strconv.Atoi(line); err == nil && !strings.Contains(lines[i], "acme.yaml:"+w) {
						t.Errorf("error %q lacks line and field %q", lines[i], w)
					}
				}
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Errorf("error is not an *Error: %T", err)
			}
		})
	}
}

// TestParseManyErrors checks that every problem is reported, in file order.
func TestParseManyErrors(t *testing.T) {
	src := `name: x
version: 1
rules:
  - type: a
    points: ten
    poitns: 3
  - {type: b, points: 1, cap: -1}
thresholds: {mql: 10, rearm: 20}
fit:
  - {trait: t, min: 5, max: 1, points: .nan}
  - {trait: t, glob: '', points: 1}
bogus: 1
`
	_, err := Parse("acme.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`models: acme.yaml:5: rules[0].points: must be a number, got "ten"`,
		`models: acme.yaml:6: rules[0].poitns: unknown key (did you mean "points"?)`,
		`models: acme.yaml:7: rules[1].cap: must not be negative, got -1`,
		`models: acme.yaml:8: thresholds.rearm: must be below mql (10), got 20`,
		`models: acme.yaml:10: fit[0].points: must be a finite number, got ".nan"`,
		`models: acme.yaml:10: fit[0].max: must be above min (5), got 1`,
		`models: acme.yaml:11: fit[1].glob: must not be empty`,
		`models: acme.yaml:12: bogus: unknown key`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], want[i])
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte(base + "#" + strings.Repeat("x", MaxFileSize) + "\n")
	if _, err := Parse("big.yaml", data); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

// TestParseAliasBomb checks that aliases cannot expand a small file into a
// huge model.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("  - type: x\n    points: 1\n    properties: &p\n")
	for i := range 500 {
		b.WriteString("      k" + strconv.Itoa(i) + ": v\n")
	}
	b.WriteString("x: &r {type: y, points: 1, properties: *p}\n")
	b.WriteString("more: [")
	for range 1000 {
		b.WriteString("*r, ")
	}
	b.WriteString("]\n")
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases are expanded") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acme.yaml")
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "acme" {
		t.Errorf("Name = %q", m.Name)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(base+"  - {type: a, points: ten}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+":7: rules[1].points") {
		t.Errorf("bad file: err = %v", err)
	}
}

// TestBadExample keeps testdata/bad.yaml, the model the CLI demo loads, bad
// in the ways its comments promise.
func TestBadExample(t *testing.T) {
	_, err := Load("testdata/bad.yaml")
	if err == nil {
		t.Fatal("testdata/bad.yaml loads")
	}
	for _, want := range []string{
		"testdata/bad.yaml:8: half_life: must be a duration with a unit",
		`testdata/bad.yaml:16: rules[0].poits: unknown key (did you mean "points"?)`,
		"testdata/bad.yaml:15: rules[0].points: required",
		`testdata/bad.yaml:20: rules[1].points: must be a number, got "ten"`,
		"testdata/bad.yaml:27: rules[2].cap: must not be negative",
		"testdata/bad.yaml:28: rules[3].type: required",
		"testdata/bad.yaml:33: fit[0]: set exactly one of equals, glob, or min/max; found 2",
		"testdata/bad.yaml:39: fit[1].max: must be above min",
		"testdata/bad.yaml:12: thresholds.rearm: must be below mql",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

func TestValidateCodeModel(t *testing.T) {
	m := &Model{Name: "code", Version: "1"}
	err := m.Validate()
	if err == nil {
		t.Fatal("zero model validates")
	}
	for _, want := range []string{
		"models: half_life: must be positive",
		"models: top_contributors: must be between 1 and 1000, got 0",
		"models: thresholds.mql: must be positive, got 0",
		"models: rules: must list at least one rule",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	good := *Default()
	good.Rules = append([]Rule(nil), good.Rules...)
	if err := good.Validate(); err != nil {
		t.Fatalf("default model: %v", err)
	}
	good.Rules[3].Points = -1
	good.Rules[3].Cap = 2
	if err := good.Validate(); err == nil || !strings.Contains(err.Error(), "models: rules[3].cap: caps limit positive points only") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(defaultYAML)
	f.Add([]byte("name: a\nversion: b\nrules: [{type: a, points: 1, properties: {u: '*'}}]\nthresholds: {mql: 1}\nfit: [{trait: t, min: 1, points: 2}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("rules: [{0\n\n0}]")) // a key with a newline broke error lines
	f.Add([]byte("half_life: 1d2h3m\n<<: {a: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data)
		if err != nil {
			if m != nil {
				t.Fatal("model and error both returned")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "models: fuzz.yaml") {
					t.Fatalf("error line without file: %q", line)
				}
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed model does not validate: %v", err)
		}
		m.PropertyKeys()
		m.TraitKeys()
	})
}
