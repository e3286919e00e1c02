// Package models holds leadscore's scoring models: the versioned YAML rule
// files that say how many points each touchpoint is worth, how fast
// engagement fades, which traits make a good fit and where the MQL threshold
// lies; their schema, loading, validation, and the default model that ships
// embedded in the binary.
//
// # Files
//
// A model file is YAML. See default.yaml in this directory for a complete,
// commented example; Default returns it parsed. The schema:
//
//	name: b2b-default          # required; stamped on MQL events
//	version: "1.0.0"           # required
//	half_life: 14d             # default 14d; must be > 0
//	max_lateness: 7d           # default 7d
//	max_future_skew: 5m        # default 5m
//	dedupe_window: 24h         # default 24h
//	top_contributors: 5        # default 5; 1 to 1000
//	thresholds:
//	  mql: 100                 # required; > 0
//	  fit_min: 10              # optional; no fit requirement when absent
//	  rearm: 50                # default mql/2; must be below mql
//	  cooldown: 30d            # default 0
//	rules:                     # required; at least one
//	  - name: pricing-page     # default derived: "page_view/url=*/pricing*"
//	    type: page_view        # required
//	    channel: web           # optional, exact match
//	    campaign: spring-24    # optional, exact match
//	    properties:            # optional globs, kept in file order
//	      url: "*/pricing*"
//	    points: 15             # required; may be negative or fractional, at most 1e6 either way
//	    cap: 30                # optional; positive points per lead per UTC day
//	fit:                       # optional
//	  - {name: senior-title, trait: title, equals: [VP, Director], points: 15}
//	  - {trait: company_size, min: 200, max: 5000, points: 10}
//	  - {trait: industry, glob: "*software*", points: 5}
//
// Durations are Go durations (time.ParseDuration) with one more unit, d for
// 24 hours, which combines with the others: 14d, 36h, 90m, 1d12h; see
// ParseDuration. A fit rule sets exactly one of equals (a non-empty list,
// compared case-insensitively), glob (non-empty) and a numeric range
// [min, max) with either bound optional; every fit rule that matches the
// lead's latest trait values adds its points. Globs are MatchGlob patterns.
//
// Numbers must be written as YAML numbers: "10" in quotes is a string and an
// error, as are NaN and infinities.
//
// # Validation
//
// Load and Parse reject a model with a clear error that names the file, the
// line and the field: "models: acme.yaml:12: rules[3].points: must be a
// number". Indexes in field paths count from 0. Every problem is reported,
// in file order, joined with errors.Join; each is an *Error. Unknown keys
// (typos), duplicate keys, missing required keys, values of the wrong type,
// and combinations that cannot be meant (rearm >= mql, a cap on a rule whose
// points are not positive, two rules with the same conditions, min >= max)
// are all errors: a model that loads is safe to score with.
//
// Models built in code can be checked with Model.Validate, which applies the
// same rules (without filling in defaults).
package models

import "time"

// Model is a validated scoring model. It is immutable once loaded and may be
// shared by any number of goroutines.
type Model struct {
	// Name and Version identify the model in MQL events and the archive.
	Name    string
	Version string

	// HalfLife is the time after which a touchpoint's points count half.
	// Default 14 days.
	HalfLife time.Duration
	// MaxLateness: a touchpoint more than this before the lead's reference
	// time is dead-lettered as too_late. Default 7 days.
	MaxLateness time.Duration
	// MaxFutureSkew: a touchpoint more than this after the wall clock is
	// dead-lettered as future. Default 5 minutes.
	MaxFutureSkew time.Duration
	// DedupeWindow: the same event_id for the same lead within this much
	// event time of the first delivery counts once. Default 24 hours.
	DedupeWindow time.Duration

	// Rules score engagement; see Rule. Order matters for ties.
	Rules []Rule
	// Fit rules score traits; fit points do not decay.
	Fit []FitRule

	Thresholds Thresholds

	// TopContributors is how many contributors an MQL event lists.
	// Default 5.
	TopContributors int
}

// Rule gives Points to a touchpoint whose type equals Type and which matches
// every other condition that is set. Among the rules that match, the one
// with the most conditions wins (Type counts as one, Channel one, Campaign
// one, each property glob one); among equals, the first in the file.
type Rule struct {
	// Name identifies the rule in the archive (the touchpoints' rule column);
	// MQL contributors are grouped by type, channel and campaign instead.
	// Default: derived from the conditions, e.g. "page_view/url=*/pricing*".
	Name string
	// Type is required; it matches the touchpoint's type exactly.
	Type string
	// Channel and Campaign, when not empty, must equal the touchpoint's.
	Channel  string
	Campaign string
	// Properties are glob patterns ('*' any run of bytes, '?' one byte,
	// case-sensitive) that the named property's string value must match.
	// A touchpoint without the property does not match. Parse keeps them
	// in file order. See MatchGlob.
	Properties []PropertyMatch
	// Points may be negative.
	Points float64
	// Cap, when > 0, is the most positive points this rule gives one lead
	// per UTC day of event time. Zero means no cap.
	Cap float64
}

// PropertyMatch is one property condition of a Rule.
type PropertyMatch struct {
	Key  string
	Glob string
}

// FitRule gives Points when the lead's current value of Trait matches. Set
// exactly one of Equals (any of the listed values, case-insensitive), Glob,
// or a numeric range [Min, Max) (either bound may be nil).
//
// Glob is case-sensitive, like rule property globs (see MatchGlob). The
// range matches a trait whose string form is a finite decimal number such
// as 250, 1e3 or 12.5 (no hex, no digit separators); any other value does
// not match. Every fit rule that matches adds its points to the lead's fit.
type FitRule struct {
	Name   string
	Trait  string
	Equals []string
	Glob   string
	Min    *float64
	Max    *float64
	Points float64
}

// Thresholds decide qualification (SCORING.md 6).
type Thresholds struct {
	// MQL is the engagement at or above which an armed lead qualifies.
	MQL float64
	// FitMin, when set, is the fit a lead needs as well.
	FitMin *float64
	// Rearm is the engagement below which a qualified lead is armed again.
	// Must be below MQL.
	Rearm float64
	// Cooldown is the least event time between two MQLs of a lead.
	Cooldown time.Duration
}
