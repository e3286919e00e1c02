package models

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// MaxTopContributors bounds top_contributors, which sizes every MQL event.
const MaxTopContributors = 1000

// Validate checks a model built in code (Parse already validates the models
// it returns) against the same rules as Parse, naming each bad field by its
// YAML path. It does not fill in defaults: a zero HalfLife is an error here.
// Every problem is reported, joined with errors.Join.
func (m *Model) Validate() error {
	var errs []error
	validate(m, positions{}, func(e *Error) { errs = append(errs, e) })
	return errors.Join(errs...)
}

// validate reports the problems of m that are about values rather than
// syntax. pos gives the line of each field and the fields that already
// failed to parse, which are skipped.
func validate(m *Model, pos positions, add func(*Error)) {
	bad := func(path string, format string, args ...any) {
		add(&Error{Line: pos.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	failed := func(paths ...string) bool {
		return slices.ContainsFunc(paths, pos.failed)
	}
	finite := func(path string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(path, "must be a finite number, got %v", v)
			return false
		}
		return true
	}

	if m.Name == "" && !failed("name") {
		bad("name", "must not be empty")
	}
	if m.Version == "" && !failed("version") {
		bad("version", "must not be empty")
	}
	if m.HalfLife <= 0 && !failed("half_life") {
		bad("half_life", "must be positive, got %s", FormatDuration(m.HalfLife))
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"max_lateness", m.MaxLateness},
		{"max_future_skew", m.MaxFutureSkew},
		{"dedupe_window", m.DedupeWindow},
		{"thresholds.cooldown", m.Thresholds.Cooldown},
	} {
		if d.v < 0 && !failed(d.path) {
			bad(d.path, "must not be negative, got %s", FormatDuration(d.v))
		}
	}
	if (m.TopContributors < 1 || m.TopContributors > MaxTopContributors) && !failed("top_contributors") {
		bad("top_contributors", "must be between 1 and %d, got %d", MaxTopContributors, m.TopContributors)
	}

	t := m.Thresholds
	if !failed("thresholds", "thresholds.mql") {
		mqlOK := finite("thresholds.mql", t.MQL)
		if mqlOK && t.MQL <= 0 {
			bad("thresholds.mql", "must be positive, got %v", t.MQL)
			mqlOK = false
		}
		if !failed("thresholds.rearm") && finite("thresholds.rearm", t.Rearm) && mqlOK && t.Rearm >= t.MQL {
			bad("thresholds.rearm", "must be below mql (%v), got %v: a qualified lead could never re-arm", t.MQL, t.Rearm)
		}
	}
	if t.FitMin != nil && !failed("thresholds.fit_min") {
		finite("thresholds.fit_min", *t.FitMin)
	}

	if len(m.Rules) == 0 && !failed("rules") {
		bad("rules", "must list at least one rule")
	}
	names := make(map[string]int, len(m.Rules))
	for i := range m.Rules {
		validateRule(&m.Rules[i], index("rules", i), names, i, bad, failed, finite)
	}

	fitNames := make(map[string]int, len(m.Fit))
	for i := range m.Fit {
		validateFit(&m.Fit[i], index("fit", i), fitNames, i, bad, failed, finite)
	}
}

// MaxPoints bounds the points of a rule or fit rule, either way: far above
// any real model's, and low enough that no number of touchpoints adds up
// to an infinite score (a lead's engagement is a sum of decayed points, at
// most one rule's points per touchpoint).
const MaxPoints = 1e6

// points reports v unless it is finite and within MaxPoints.
func points(path string, v float64, finite finiteFunc, bad reportFunc) {
	if finite(path, v) && math.Abs(v) > MaxPoints {
		bad(path, "must be between -%.0f and %.0f, got %v", float64(MaxPoints), float64(MaxPoints), v)
	}
}

type (
	reportFunc = func(path string, format string, args ...any)
	failedFunc = func(paths ...string) bool
	finiteFunc = func(path string, v float64) bool
)

func validateRule(r *Rule, at string, names map[string]int, i int, bad reportFunc, failed failedFunc, finite finiteFunc) {
	if failed(at) {
		return
	}
	if r.Type == "" && !failed(at+".type") {
		bad(at+".type", "must not be empty")
	}
	switch {
	case failed(at+".name") || r.Type == "":
	case r.Name == "":
		bad(at+".name", "must not be empty")
	default:
		if first, dup := names[r.Name]; dup {
			if r.Name == DefaultRuleName(r) {
				bad(at, "same conditions as rules[%d], so this rule could never match (its default name %q is taken)", first, r.Name)
			} else {
				bad(at+".name", "duplicate rule name %q, first used by rules[%d]", r.Name, first)
			}
		} else {
			names[r.Name] = i
		}
	}
	if !failed(at + ".points") {
		points(at+".points", r.Points, finite, bad)
	}
	if !failed(at+".cap") && finite(at+".cap", r.Cap) {
		switch {
		case r.Cap < 0:
			bad(at+".cap", "must not be negative, got %v (omit it or use 0 for no cap)", r.Cap)
		case r.Cap > 0 && r.Points <= 0 && !failed(at+".points"):
			bad(at+".cap", "caps limit positive points only, and this rule gives %v", r.Points)
		}
	}
	seen := make(map[string]bool, len(r.Properties))
	for _, pm := range r.Properties {
		path := join(at+".properties", pm.Key)
		switch {
		case failed(path):
		case pm.Key == "":
			bad(at+".properties", "a property name must not be empty")
		case seen[pm.Key]:
			bad(path, "duplicate property condition")
		case pm.Glob == "":
			bad(path, "must not be empty (use \"*\" to require the property with any value)")
		}
		seen[pm.Key] = true
	}
}

func validateFit(r *FitRule, at string, names map[string]int, i int, bad reportFunc, failed failedFunc, finite finiteFunc) {
	if failed(at) {
		return
	}
	if r.Trait == "" && !failed(at+".trait") {
		bad(at+".trait", "must not be empty")
	}
	if !failed(at + ".points") {
		points(at+".points", r.Points, finite, bad)
	}
	if failed(at+".equals", at+".glob", at+".min", at+".max") {
		return
	}
	n := 0
	if r.Equals != nil {
		n++
	}
	if r.Glob != "" {
		n++
	}
	if r.Min != nil || r.Max != nil {
		n++
	}
	if n != 1 {
		bad(at, "set exactly one of equals, glob, or min/max; found %d", n)
		return
	}
	switch {
	case failed(at + ".name"):
	case r.Name == "":
		bad(at+".name", "must not be empty")
	default:
		if first, dup := names[r.Name]; dup {
			bad(at+".name", "duplicate fit rule name %q, first used by fit[%d]", r.Name, first)
		} else {
			names[r.Name] = i
		}
	}
	if r.Equals != nil && len(r.Equals) == 0 {
		bad(at+".equals", "must list at least one value")
	}
	for j, v := range r.Equals {
		if v == "" && !failed(index(at+".equals", j)) {
			bad(index(at+".equals", j), "must not be empty")
		}
	}
	minOK := r.Min == nil || finite(at+".min", *r.Min)
	maxOK := r.Max == nil || finite(at+".max", *r.Max)
	if r.Min != nil && r.Max != nil && minOK && maxOK && *r.Min >= *r.Max {
		bad(at+".max", "must be above min (%s), got %s: the range [min, max) would be empty",
			strconv.FormatFloat(*r.Min, 'g', -1, 64), strconv.FormatFloat(*r.Max, 'g', -1, 64))
	}
}
