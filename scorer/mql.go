package scorer

import "time"

// MQL is the event emitted when a lead qualifies (SCORING.md 6). Its JSON
// form is the public schema of the leadscore.mql topic, described by
// sinks/mqlout/mql.schema.json; fields are only ever added.
type MQL struct {
	// MQLID is deterministic: the same lead, sequence and trigger event
	// always give the same id, so consumers can de-duplicate.
	MQLID       string `json:"mql_id"`
	LeadID      string `json:"lead_id"`
	AnonymousID string `json:"anonymous_id,omitempty"`
	AccountID   string `json:"account_id,omitempty"`
	// Sequence is 1 for a lead's first MQL, 2 for the next, ...
	Sequence int `json:"sequence"`
	// QualifiedAt is the event time of the touchpoint that crossed.
	QualifiedAt    time.Time `json:"qualified_at"`
	TriggerEventID string    `json:"trigger_event_id"`
	// Score is the engagement (E_ref) right after the trigger was applied.
	Score      float64       `json:"score"`
	Fit        float64       `json:"fit"`
	Thresholds MQLThresholds `json:"thresholds"`
	Model      ModelRef      `json:"model"`
	// Contributors are the largest contributions to Score, decayed to
	// QualifiedAt, largest first: why this lead qualified.
	Contributors []Contributor `json:"contributors"`
	// EmittedAt is wall-clock time of emission; the only field that is not
	// deterministic. Set by the pipeline, not the engine.
	EmittedAt time.Time `json:"emitted_at"`
}

// MQLThresholds are the thresholds in force when the lead qualified.
type MQLThresholds struct {
	MQL             float64  `json:"mql"`
	FitMin          *float64 `json:"fit_min,omitempty"`
	Rearm           float64  `json:"rearm"`
	CooldownSeconds float64  `json:"cooldown_seconds"`
}

// ModelRef names the scoring model in force.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Contributor is the decayed points one (type, channel, campaign) group of
// touchpoints adds to a lead's engagement.
type Contributor struct {
	Type     string  `json:"type"`
	Channel  string  `json:"channel,omitempty"`
	Campaign string  `json:"campaign,omitempty"`
	Points   float64 `json:"points"`
}
