package archive

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/leadscore/leadscore/scorer"
)

// TouchpointRow is one scored touchpoint: the value of a record on the
// scored topic (JSON, see AppendJSON) and one row of the touchpoints table
// (Parquet, the struct tags below).
//
// Columns marked optional in the tags hold null when the Go value is the
// zero value ("" for strings).
type TouchpointRow struct {
	EventID     string `parquet:"event_id"`
	LeadID      string `parquet:"lead_id"`
	AnonymousID string `parquet:"anonymous_id,optional"`
	AccountID   string `parquet:"account_id,optional"`
	Type        string `parquet:"type"`
	Channel     string `parquet:"channel,optional"`
	Campaign    string `parquet:"campaign,optional"`
	// OccurredAt is event time. Parquet: timestamp(millisecond), adjusted
	// to UTC. JSON: "occurred_at" as Unix milliseconds.
	OccurredAt time.Time `parquet:"occurred_at,timestamp(millisecond:utc)"`
	// Properties and Traits are the JSON objects as received, "" when
	// absent. Parquet: optional string holding JSON text (not the JSON
	// logical type: parquet-go v0.32 panics writing optional JSON columns).
	Properties string `parquet:"properties,optional"`
	Traits     string `parquet:"traits,optional"`
	// Rule is the id of the rule that matched, "" when none did.
	Rule       string  `parquet:"rule,optional"`
	Points     float64 `parquet:"points"`
	Engagement float64 `parquet:"engagement"`
	Fit        float64 `parquet:"fit"`
	// TriggeredMQL is true when this touchpoint made the lead an MQL; then
	// MQLID is the id of the MQL event, else "".
	TriggeredMQL bool   `parquet:"triggered_mql"`
	MQLID        string `parquet:"mql_id,optional"`
	ModelName    string `parquet:"model_name"`
	ModelVersion string `parquet:"model_version"`
	// SourceTopic, SourcePartition and SourceOffset locate the input
	// touchpoint record.
	SourceTopic     string `parquet:"source_topic"`
	SourcePartition int32  `parquet:"source_partition"`
	SourceOffset    int64  `parquet:"source_offset"`
}

// AppendJSON appends r as one JSON object to dst and returns the extended
// slice. Keys are snake_case and always present; occurred_at is Unix
// milliseconds; properties and traits are embedded verbatim (they must be
// valid JSON objects) or null when empty. Strings are escaped like
// encoding/json does (invalid UTF-8 becomes U+FFFD); non-finite floats,
// which JSON cannot express, are written as null.
//
// AppendJSON does not allocate when dst has room.
func (r *TouchpointRow) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, r.EventID)
	dst = append(dst, `,"lead_id":`...)
	dst = appendString(dst, r.LeadID)
	dst = append(dst, `,"anonymous_id":`...)
	dst = appendString(dst, r.AnonymousID)
	dst = append(dst, `,"account_id":`...)
	dst = appendString(dst, r.AccountID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, r.Type)
	dst = append(dst, `,"channel":`...)
	dst = appendString(dst, r.Channel)
	dst = append(dst, `,"campaign":`...)
	dst = appendString(dst, r.Campaign)
	dst = append(dst, `,"occurred_at":`...)
	dst = strconv.AppendInt(dst, r.OccurredAt.UnixMilli(), 10)
	dst = append(dst, `,"properties":`...)
	dst = appendRaw(dst, r.Properties)
	dst = append(dst, `,"traits":`...)
	dst = appendRaw(dst, r.Traits)
	dst = append(dst, `,"rule":`...)
	dst = appendString(dst, r.Rule)
	dst = append(dst, `,"points":`...)
	dst = appendFloat(dst, r.Points)
	dst = append(dst, `,"engagement":`...)
	dst = appendFloat(dst, r.Engagement)
	dst = append(dst, `,"fit":`...)
	dst = appendFloat(dst, r.Fit)
	dst = append(dst, `,"triggered_mql":`...)
	dst = strconv.AppendBool(dst, r.TriggeredMQL)
	dst = append(dst, `,"mql_id":`...)
	dst = appendString(dst, r.MQLID)
	dst = append(dst, `,"model_name":`...)
	dst = appendString(dst, r.ModelName)
	dst = append(dst, `,"model_version":`...)
	dst = appendString(dst, r.ModelVersion)
	dst = append(dst, `,"source_topic":`...)
	dst = appendString(dst, r.SourceTopic)
	dst = append(dst, `,"source_partition":`...)
	dst = strconv.AppendInt(dst, int64(r.SourcePartition), 10)
	dst = append(dst, `,"source_offset":`...)
	dst = strconv.AppendInt(dst, r.SourceOffset, 10)
	return append(dst, '}')
}

// touchpointJSON is the decoding form of TouchpointRow.
type touchpointJSON struct {
	EventID         string          `json:"event_id"`
	LeadID          string          `json:"lead_id"`
	AnonymousID     string          `json:"anonymous_id"`
	AccountID       string          `json:"account_id"`
	Type            string          `json:"type"`
	Channel         string          `json:"channel"`
	Campaign        string          `json:"campaign"`
	OccurredAt      *int64          `json:"occurred_at"`
	Properties      json.RawMessage `json:"properties"`
	Traits          json.RawMessage `json:"traits"`
	Rule            string          `json:"rule"`
	Points          *float64        `json:"points"`
	Engagement      *float64        `json:"engagement"`
	Fit             *float64        `json:"fit"`
	TriggeredMQL    bool            `json:"triggered_mql"`
	MQLID           string          `json:"mql_id"`
	ModelName       string          `json:"model_name"`
	ModelVersion    string          `json:"model_version"`
	SourceTopic     string          `json:"source_topic"`
	SourcePartition int32           `json:"source_partition"`
	SourceOffset    int64           `json:"source_offset"`
}

// errNoOccurredAt is returned for a scored record without occurred_at.
var errNoOccurredAt = errors.New("archive: touchpoint: occurred_at missing")

// UnmarshalJSON decodes the form written by AppendJSON. occurred_at is
// required; null floats decode as 0 and null properties/traits as "".
func (r *TouchpointRow) UnmarshalJSON(b []byte) error {
	var j touchpointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("archive: touchpoint: %w", err)
	}
	if j.OccurredAt == nil {
		return errNoOccurredAt
	}
	*r = TouchpointRow{
		EventID:         j.EventID,
		LeadID:          j.LeadID,
		AnonymousID:     j.AnonymousID,
		AccountID:       j.AccountID,
		Type:            j.Type,
		Channel:         j.Channel,
		Campaign:        j.Campaign,
		OccurredAt:      time.UnixMilli(*j.OccurredAt).UTC(),
		Properties:      rawString(j.Properties),
		Traits:          rawString(j.Traits),
		Rule:            j.Rule,
		Points:          deref(j.Points),
		Engagement:      deref(j.Engagement),
		Fit:             deref(j.Fit),
		TriggeredMQL:    j.TriggeredMQL,
		MQLID:           j.MQLID,
		ModelName:       j.ModelName,
		ModelVersion:    j.ModelVersion,
		SourceTopic:     j.SourceTopic,
		SourcePartition: j.SourcePartition,
		SourceOffset:    j.SourceOffset,
	}
	return nil
}

func rawString(m json.RawMessage) string {
	if len(m) == 0 || string(m) == "null" {
		return ""
	}
	return string(m)
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// MQLRow is one row of the mql table, flattened from scorer.MQL.
type MQLRow struct {
	MQLID          string    `parquet:"mql_id"`
	LeadID         string    `parquet:"lead_id"`
	AnonymousID    string    `parquet:"anonymous_id,optional"`
	AccountID      string    `parquet:"account_id,optional"`
	Sequence       int64     `parquet:"sequence"`
	QualifiedAt    time.Time `parquet:"qualified_at,timestamp(millisecond:utc)"`
	TriggerEventID string    `parquet:"trigger_event_id"`
	Score          float64   `parquet:"score"`
	Fit            float64   `parquet:"fit"`
	ThresholdMQL   float64   `parquet:"threshold_mql"`
	// ThresholdFitMin is null when the model has no fit gate.
	ThresholdFitMin          *float64 `parquet:"threshold_fit_min,optional"`
	ThresholdRearm           float64  `parquet:"threshold_rearm"`
	ThresholdCooldownSeconds float64  `parquet:"threshold_cooldown_seconds"`
	ModelName                string   `parquet:"model_name"`
	ModelVersion             string   `parquet:"model_version"`
	// Contributors is a LIST of structs, largest first.
	Contributors []ContributorRow `parquet:"contributors,list"`
	// EmittedAt is null when the event carried none.
	EmittedAt time.Time `parquet:"emitted_at,optional,timestamp(millisecond:utc)"`
}

// ContributorRow is one element of MQLRow.Contributors.
type ContributorRow struct {
	Type     string  `parquet:"type"`
	Channel  string  `parquet:"channel,optional"`
	Campaign string  `parquet:"campaign,optional"`
	Points   float64 `parquet:"points"`
}

// MQLRowFrom flattens m into a row. Times are truncated to milliseconds
// and converted to UTC, as the Parquet column stores them.
func MQLRowFrom(m *scorer.MQL) MQLRow {
	row := MQLRow{
		MQLID:                    m.MQLID,
		LeadID:                   m.LeadID,
		AnonymousID:              m.AnonymousID,
		AccountID:                m.AccountID,
		Sequence:                 int64(m.Sequence),
		QualifiedAt:              millis(m.QualifiedAt),
		TriggerEventID:           m.TriggerEventID,
		Score:                    m.Score,
		Fit:                      m.Fit,
		ThresholdMQL:             m.Thresholds.MQL,
		ThresholdRearm:           m.Thresholds.Rearm,
		ThresholdCooldownSeconds: m.Thresholds.CooldownSeconds,
		ModelName:                m.Model.Name,
		ModelVersion:             m.Model.Version,
		EmittedAt:                millis(m.EmittedAt),
	}
	if m.Thresholds.FitMin != nil {
		v := *m.Thresholds.FitMin
		row.ThresholdFitMin = &v
	}
	if len(m.Contributors) > 0 {
		row.Contributors = make([]ContributorRow, len(m.Contributors))
		for i, c := range m.Contributors {
			row.Contributors[i] = ContributorRow(c)
		}
	}
	return row
}

// millis truncates t to milliseconds in UTC; the zero time stays zero.
func millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

// DeadLetterRow is one row of the dead_letters table: a record of the DLQ
// topic, or a record of another archived topic that could not be decoded
// (Reason "archive_undecodable").
type DeadLetterRow struct {
	// Key and Value are the original record's, unchanged; null when the
	// record had none. A key that is not valid UTF-8 cannot be a string
	// column's value (DuckDB and pyarrow refuse to read it): it is in
	// KeyBase64 instead, and Key is null.
	Key    string `parquet:"key,optional"`
	Value  []byte `parquet:"value,optional"`
	Reason string `parquet:"reason"`
	Detail string `parquet:"detail,optional"`
	// SourceTopic, SourcePartition and SourceOffset locate the original
	// record; null when the dead letter did not say (or said something
	// that is not a number).
	SourceTopic     string `parquet:"source_topic,optional"`
	SourcePartition *int32 `parquet:"source_partition,optional"`
	SourceOffset    *int64 `parquet:"source_offset,optional"`
	// DeadLetteredAt is the Kafka timestamp of the dead-letter record.
	DeadLetteredAt time.Time `parquet:"dead_lettered_at,timestamp(millisecond:utc)"`
	// Headers holds the record's other headers as a JSON array of
	// {"key":..., "value":...} objects in record order; a value that is
	// not valid UTF-8 is given as "value_base64" instead. Null when there
	// are none. They are the original record's own headers (including
	// any of the names above that it carried: the columns take the last
	// header of each name, the pipeline's), then the pipeline's
	// leadscore.truncated, leadscore.headers_dropped and
	// leadscore.key_truncated when it had to cut the dead letter.
	Headers string `parquet:"headers,optional"`
	// KeyBase64 is the standard base64 of a key that is not valid UTF-8;
	// null otherwise. The table's last column, added after the others:
	// files written before it have no such column, and a reader that
	// takes its columns from one of them does not see it (README, "The
	// Parquet archive": union_by_name).
	KeyBase64 string `parquet:"key_base64,optional"`
}

// setKey sets Key, or KeyBase64 for a key that is not valid UTF-8.
func (r *DeadLetterRow) setKey(key []byte) {
	if utf8.Valid(key) {
		r.Key, r.KeyBase64 = string(key), ""
		return
	}
	r.Key, r.KeyBase64 = "", base64.StdEncoding.EncodeToString(key)
}

// Header names of a dead-letter record, set by the pipeline.
const (
	HeaderReason          = "leadscore.reason"
	HeaderDetail          = "leadscore.detail"
	HeaderSourceTopic     = "leadscore.source.topic"
	HeaderSourcePartition = "leadscore.source.partition"
	HeaderSourceOffset    = "leadscore.source.offset"
)

// ReasonUndecodable is the dead_letters reason of a record the archive
// could not decode.
const ReasonUndecodable = "archive_undecodable"

// appendString appends s as a JSON string, escaping like encoding/json
// (without its HTML escaping).
//
// Never inlined: the PGO profile (cmd/leadscore/default.pgo) had the
// compiler inline it, loop and all, at 9 of AppendJSON's 12 calls (and
// appendFloat at its 3), and AppendJSON was 14 % slower for it
// (bench/RESULTS.md, session 16). Without a profile both are over the
// inlining budget.
//
//go:noinline
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', byte('8'+r-'\u2028'))
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendRaw(dst []byte, raw string) []byte {
	if raw == "" {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendFloat formats f like encoding/json: shortest representation,
// exponent form only for very small or large magnitudes. Never inlined,
// as appendString.
//
//go:noinline
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
