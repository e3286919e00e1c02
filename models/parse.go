package models

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest model file Parse and Load accept: far above any
// hand-written model, small enough that a wrong path (a log file, a binary)
// fails fast.
const MaxFileSize = 1 << 20

// maxNodes bounds the YAML nodes Parse walks, counting every use of an
// alias in full, so that a small file cannot expand into a huge model.
const maxNodes = 200_000

// Error is one problem found in a model. Parse and Load return every Error
// they find, joined with errors.Join in file order; use errors.As to get
// the first one.
type Error struct {
	// File is the name given to Parse (the path given to Load); empty for
	// Validate.
	File string
	// Line is 1-based; 0 when unknown (Validate on a model built in code).
	Line int
	// Field is the path of the offending field as written in YAML, with
	// 0-based indexes: "rules[3].points", "thresholds.mql". Empty for
	// problems with the file as a whole.
	Field string
	// Msg says what is wrong, and what was found.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("models: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and parses the model file at path; errors name path as given.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit to tell "too large" from "just fits".
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("models: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses and validates a model file. filename is used in error
// messages only. The returned model has every default filled in (see the
// package documentation) and passes Validate.
//
// On failure the error lists every problem found, one per line, in file
// order, each naming the file, line and field:
//
//	models: acme.yaml:12: rules[3].points: must be a number, got "ten"
func Parse(filename string, data []byte) (*Model, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: filename, Msg: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}
	}
	p := &parser{file: filename, pos: positions{}}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	m := p.model(root)
	if resolve(root).Kind == yaml.MappingNode {
		validate(m, p.pos, p.add)
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// yamlLine picks the line out of the YAML library's syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes data into its single YAML document's root node.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: p.file, Msg: "empty model"}
		}
		e := &Error{File: p.file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		if sub := yamlLine.FindStringSubmatch(err.Error()); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Msg = "invalid YAML: " + sub[2]
		}
		return nil, e
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		line := 0
		if err == nil {
			line = next.Line
		}
		return nil, &Error{File: p.file, Line: line, Msg: "more than one YAML document; a model file holds exactly one"}
	}
	if len(doc.Content) != 1 {
		return nil, &Error{File: p.file, Msg: "empty model"}
	}
	if n := countNodes(doc.Content[0], map[*yaml.Node]int{}, 0); n > maxNodes {
		return nil, &Error{File: p.file, Msg: fmt.Sprintf("more than %d YAML nodes once aliases are expanded", maxNodes)}
	}
	return doc.Content[0], nil
}

// countNodes counts n's nodes with aliases expanded, stopping early once
// over maxNodes. memo caches the count of each node reached through an
// alias; depth guards against alias cycles, which the decoder rejects but
// a hand-built node graph need not.
func countNodes(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if depth > 100 {
		return maxNodes + 1
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if c, ok := memo[n.Alias]; ok {
			return c
		}
		c := countNodes(n.Alias, memo, depth+1)
		memo[n.Alias] = c
		return c
	}
	total := 1
	for _, c := range n.Content {
		total += countNodes(c, memo, depth+1)
		if total > maxNodes {
			return total
		}
	}
	return total
}

// positions maps field paths to the line they were written on, and marks
// the fields that already failed to parse so validation does not report
// them a second time.
type positions map[string]position

type position struct {
	line   int
	failed bool
}

// line returns the line of path, or of its nearest written ancestor (for a
// field that is missing: the line of the mapping that lacks it).
func (ps positions) line(path string) int {
	for path != "" {
		if p, ok := ps[path]; ok {
			return p.line
		}
		path = parent(path)
	}
	return ps[""].line
}

func (ps positions) failed(path string) bool { return ps[path].failed }

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

type parser struct {
	file string
	pos  positions
	errs []*Error
}

func (p *parser) add(e *Error) {
	e.File = p.file
	p.errs = append(p.errs, e)
}

// fail records a problem with the field at path, written at line, and marks
// the field failed.
func (p *parser) fail(line int, path, format string, args ...any) {
	pp := p.pos[path]
	pp.failed = true
	if pp.line == 0 {
		pp.line = line
	}
	p.pos[path] = pp
	p.add(&Error{Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// seen records that the field at path is written at n's line.
func (p *parser) seen(path string, n *yaml.Node) {
	if _, ok := p.pos[path]; !ok {
		p.pos[path] = position{line: n.Line}
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// describe says what a node is, for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	}
	return "an unknown node"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// field is one key/value pair of a mapping.
type field struct {
	key   string
	knode *yaml.Node
	val   *yaml.Node
}

// fields checks that n is a mapping whose keys are distinct strings among
// known and returns its pairs in file order. Problems are recorded; the
// pairs that are fine are returned all the same so that checking goes on.
func (p *parser) fields(n *yaml.Node, path string, known []string) []field {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.fail(n.Line, path, "must be a mapping, got %s", describe(n))
		return nil
	}
	out := make([]field, 0, len(n.Content)/2)
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			what := describe(k)
			if k.Tag == "!!merge" {
				what = "a merge key (<<), which models do not support"
			}
			p.add(&Error{Line: k.Line, Field: path, Msg: "keys must be plain strings, got " + what})
			continue
		}
		at := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			p.fail(k.Line, at, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		if known != nil && !slices.Contains(known, k.Value) {
			msg := "unknown key"
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			msg += "; known keys: " + strings.Join(known, ", ")
			p.fail(k.Line, at, "%s", msg)
			continue
		}
		p.seen(at, resolve(v))
		out = append(out, field{key: k.Value, knode: k, val: resolve(v)})
	}
	return out
}

// join appends key to path. A key that would make the path ambiguous or
// unreadable (empty, or holding spaces, dots, brackets, quotes or control
// characters) is written quoted in brackets: properties["utm source"].
func join(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return r <= ' ' || r == '.' || r == '[' || r == ']' || r == '"' || r == 0x7f || !unicode.IsPrint(r)
	}) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// suggest returns the known key closest to a misspelt one, if close enough.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str reads a string scalar. Numbers and booleans are taken as written
// (version: 1.0 is "1.0"); null, lists and mappings are errors.
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.fail(n.Line, path, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// number reads a finite number. Quoted numbers are strings and rejected,
// so that a typo cannot turn into a silent zero.
func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.fail(n.Line, path, "must be a number, got %s", describe(n))
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		p.fail(n.Line, path, "must be a number, got %s", describe(n))
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		p.fail(n.Line, path, "must be a finite number, got %s", describe(n))
		return 0, false
	}
	return f, true
}

func (p *parser) integer(n *yaml.Node, path string) (int, bool) {
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		p.fail(n.Line, path, "must be a whole number, got %s", describe(n))
		return 0, false
	}
	return i, true
}

func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.fail(n.Line, path, "must be a duration such as 14d, 36h or 90m, got %s", describe(n))
		return 0, false
	}
	if n.Tag == "!!int" && n.Value != "0" {
		p.fail(n.Line, path, "must be a duration with a unit such as 14d, 36h or 90m, got %s", describe(n))
		return 0, false
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		p.fail(n.Line, path, "%v", err)
		return 0, false
	}
	return d, true
}

// required reports each of keys that fs lacks, at the line of the mapping.
func (p *parser) required(mapping *yaml.Node, path string, fs []field, keys ...string) {
	for _, k := range keys {
		if !slices.ContainsFunc(fs, func(f field) bool { return f.key == k }) {
			p.fail(resolve(mapping).Line, join(path, k), "required")
		}
	}
}

var (
	topKeys       = []string{"name", "version", "half_life", "max_lateness", "max_future_skew", "dedupe_window", "top_contributors", "thresholds", "rules", "fit"}
	thresholdKeys = []string{"mql", "fit_min", "rearm", "cooldown"}
	ruleKeys      = []string{"name", "type", "channel", "campaign", "properties", "points", "cap"}
	fitKeys       = []string{"name", "trait", "equals", "glob", "min", "max", "points"}
)

// Defaults applied by Parse to keys that are absent.
const (
	DefaultHalfLife        = 14 * day
	DefaultMaxLateness     = 7 * day
	DefaultMaxFutureSkew   = 5 * time.Minute
	DefaultDedupeWindow    = 24 * time.Hour
	DefaultTopContributors = 5
)

func (p *parser) model(root *yaml.Node) *Model {
	p.pos[""] = position{line: root.Line}
	m := &Model{
		HalfLife:        DefaultHalfLife,
		MaxLateness:     DefaultMaxLateness,
		MaxFutureSkew:   DefaultMaxFutureSkew,
		DedupeWindow:    DefaultDedupeWindow,
		TopContributors: DefaultTopContributors,
	}
	fs := p.fields(root, "", topKeys)
	if fs == nil && root.Kind != yaml.MappingNode {
		return m
	}
	p.required(root, "", fs, "name", "version", "rules", "thresholds")
	for _, f := range fs {
		switch f.key {
		case "name":
			m.Name, _ = p.str(f.val, f.key)
		case "version":
			m.Version, _ = p.str(f.val, f.key)
		case "half_life":
			m.HalfLife, _ = p.duration(f.val, f.key)
		case "max_lateness":
			m.MaxLateness, _ = p.duration(f.val, f.key)
		case "max_future_skew":
			m.MaxFutureSkew, _ = p.duration(f.val, f.key)
		case "dedupe_window":
			m.DedupeWindow, _ = p.duration(f.val, f.key)
		case "top_contributors":
			m.TopContributors, _ = p.integer(f.val, f.key)
		case "thresholds":
			m.Thresholds = p.thresholds(f.val, f.key)
		case "rules":
			m.Rules = p.rules(f.val, f.key)
		case "fit":
			m.Fit = p.fitRules(f.val, f.key)
		}
	}
	return m
}

func (p *parser) thresholds(n *yaml.Node, path string) Thresholds {
	var t Thresholds
	fs := p.fields(n, path, thresholdKeys)
	if fs == nil && n.Kind != yaml.MappingNode {
		return t
	}
	p.required(n, path, fs, "mql")
	rearmSet := false
	for _, f := range fs {
		at := join(path, f.key)
		switch f.key {
		case "mql":
			t.MQL, _ = p.number(f.val, at)
		case "fit_min":
			if v, ok := p.number(f.val, at); ok {
				t.FitMin = &v
			}
		case "rearm":
			t.Rearm, _ = p.number(f.val, at)
			rearmSet = true
		case "cooldown":
			t.Cooldown, _ = p.duration(f.val, at)
		}
	}
	if !rearmSet {
		t.Rearm = t.MQL / 2
	}
	return t
}

func (p *parser) rules(n *yaml.Node, path string) []Rule {
	if n.Kind != yaml.SequenceNode {
		p.fail(n.Line, path, "must be a list of rules, got %s", describe(n))
		return nil
	}
	rules := make([]Rule, 0, len(n.Content))
	for i, rn := range n.Content {
		rn = resolve(rn)
		at := index(path, i)
		p.seen(at, rn)
		r := Rule{}
		named := false
		fs := p.fields(rn, at, ruleKeys)
		if rn.Kind == yaml.MappingNode {
			p.required(rn, at, fs, "type", "points")
		}
		for _, f := range fs {
			fat := join(at, f.key)
			switch f.key {
			case "name":
				named = true
				r.Name, _ = p.str(f.val, fat)
			case "type":
				r.Type, _ = p.str(f.val, fat)
			case "channel":
				r.Channel, _ = p.str(f.val, fat)
			case "campaign":
				r.Campaign, _ = p.str(f.val, fat)
			case "properties":
				r.Properties = p.properties(f.val, fat)
			case "points":
				r.Points, _ = p.number(f.val, fat)
			case "cap":
				r.Cap, _ = p.number(f.val, fat)
			}
		}
		if !named {
			r.Name = DefaultRuleName(&r)
		}
		rules = append(rules, r)
	}
	return rules
}

// properties keeps the conditions in file order: the order is part of the
// derived rule name and of what a user reads in the archive.
func (p *parser) properties(n *yaml.Node, path string) []PropertyMatch {
	if isNull(n) {
		return nil
	}
	fs := p.fields(n, path, nil)
	out := make([]PropertyMatch, 0, len(fs))
	for _, f := range fs {
		g, ok := p.str(f.val, join(path, f.key))
		if ok {
			out = append(out, PropertyMatch{Key: f.key, Glob: g})
		}
	}
	return out
}

func (p *parser) fitRules(n *yaml.Node, path string) []FitRule {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n.Line, path, "must be a list of fit rules, got %s", describe(n))
		return nil
	}
	out := make([]FitRule, 0, len(n.Content))
	for i, rn := range n.Content {
		rn = resolve(rn)
		at := index(path, i)
		p.seen(at, rn)
		var r FitRule
		fs := p.fields(rn, at, fitKeys)
		if rn.Kind == yaml.MappingNode {
			p.required(rn, at, fs, "trait", "points")
		}
		named := false
		for _, f := range fs {
			fat := join(at, f.key)
			switch f.key {
			case "name":
				named = true
				r.Name, _ = p.str(f.val, fat)
			case "trait":
				r.Trait, _ = p.str(f.val, fat)
			case "equals":
				r.Equals = p.equals(f.val, fat)
			case "glob":
				if g, ok := p.str(f.val, fat); ok && g == "" {
					p.fail(f.val.Line, fat, "must not be empty (use equals to match an empty value)")
				} else {
					r.Glob = g
				}
			case "min":
				if v, ok := p.number(f.val, fat); ok {
					r.Min = &v
				}
			case "max":
				if v, ok := p.number(f.val, fat); ok {
					r.Max = &v
				}
			case "points":
				r.Points, _ = p.number(f.val, fat)
			}
		}
		if !named {
			r.Name = DefaultFitName(&r)
		}
		out = append(out, r)
	}
	return out
}

// equals reads a list of values; numbers and booleans count as written, so
// that "equals: [US, 1]" compares with the trait's string form.
func (p *parser) equals(n *yaml.Node, path string) []string {
	if n.Kind != yaml.SequenceNode {
		p.fail(n.Line, path, "must be a list of values, e.g. [VP, Director], got %s", describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, v := range n.Content {
		v = resolve(v)
		p.seen(index(path, i), v)
		if s, ok := p.str(v, index(path, i)); ok {
			out = append(out, s)
		} else {
			out = append(out, "")
		}
	}
	if len(out) == 0 {
		// An empty list is "set but matches nothing": report it here, with
		// its line, rather than as a missing matcher.
		p.fail(n.Line, path, "must list at least one value")
		return []string{}
	}
	return out
}

// DefaultRuleName is the name Parse gives a rule without one: its type, then
// each condition as "/key=value" (channel, campaign, then the properties in
// file order), e.g. "page_view/url=*/pricing*".
func DefaultRuleName(r *Rule) string {
	var b strings.Builder
	b.WriteString(r.Type)
	if r.Channel != "" {
		b.WriteString("/channel=" + r.Channel)
	}
	if r.Campaign != "" {
		b.WriteString("/campaign=" + r.Campaign)
	}
	for _, pm := range r.Properties {
		b.WriteString("/" + pm.Key + "=" + pm.Glob)
	}
	return b.String()
}

// DefaultFitName is the name Parse gives a fit rule without one:
// "title=VP|Director", "industry~*soft*" or "company_size=[200,5000)".
func DefaultFitName(r *FitRule) string {
	switch {
	case r.Equals != nil:
		return r.Trait + "=" + strings.Join(r.Equals, "|")
	case r.Glob != "":
		return r.Trait + "~" + r.Glob
	default:
		lo, hi := "-inf", "inf"
		if r.Min != nil {
			lo = strconv.FormatFloat(*r.Min, 'g', -1, 64)
		}
		if r.Max != nil {
			hi = strconv.FormatFloat(*r.Max, 'g', -1, 64)
		}
		return r.Trait + "=[" + lo + "," + hi + ")"
	}
}
