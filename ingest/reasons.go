package ingest

import (
	"errors"
	"strconv"
)

// Reason says why a record was dead-lettered. The strings are stable: they
// are written to the dead-letter header and used as metric label values.
type Reason string

// Dead-letter reasons.
const (
	// ReasonOversized: the value is larger than DecoderConfig.MaxValueBytes.
	ReasonOversized Reason = "oversized"
	// ReasonInvalidJSON: the value is not valid JSON.
	ReasonInvalidJSON Reason = "invalid_json"
	// ReasonInvalidUTF8: a JSON string or a header value is not valid UTF-8.
	ReasonInvalidUTF8 Reason = "invalid_utf8"
	// ReasonTooDeep: objects and arrays nest deeper than DecoderConfig.MaxDepth.
	ReasonTooDeep Reason = "too_deep"
	// ReasonMissingField: a required field is absent, null or empty.
	ReasonMissingField Reason = "missing_field"
	// ReasonFieldTooLong: a field is longer than its limit.
	ReasonFieldTooLong Reason = "field_too_long"
	// ReasonWrongType: a known field has the wrong JSON type.
	ReasonWrongType Reason = "wrong_type"
	// ReasonBadTime: the event time cannot be parsed or is out of range.
	ReasonBadTime Reason = "bad_time"
	// ReasonMissingKey: the record key is empty.
	ReasonMissingKey Reason = "missing_key"
	// ReasonKeyMismatch: the record key equals neither lead_id nor anonymous_id.
	ReasonKeyMismatch Reason = "key_mismatch"
	// ReasonUnsupported: a well-formed record of a kind leadscore does not
	// score (a Segment screen/group/alias call, a CloudEvent with non-JSON
	// data or an unknown specversion).
	ReasonUnsupported Reason = "unsupported"
	// ReasonTooLate: set by the engine (SCORING.md 4).
	ReasonTooLate Reason = "too_late"
	// ReasonFuture: set by the engine (SCORING.md 4).
	ReasonFuture Reason = "future"
)

var allReasons = [...]Reason{
	ReasonOversized, ReasonInvalidJSON, ReasonInvalidUTF8, ReasonTooDeep,
	ReasonMissingField, ReasonFieldTooLong, ReasonWrongType, ReasonBadTime,
	ReasonMissingKey, ReasonKeyMismatch, ReasonUnsupported, ReasonTooLate,
	ReasonFuture,
}

// Reasons returns every Reason, for pre-registering metric label values.
// The caller owns the returned slice.
func Reasons() []Reason {
	out := make([]Reason, len(allReasons))
	copy(out, allReasons[:])
	return out
}

// DecodeError is returned by Decoder.Decode for a record that cannot be
// used. Field names the offending field in the source format's spelling
// (for example "messageId", "data.lead_id" or the header "ce_time") when
// there is one.
type DecodeError struct {
	Reason Reason
	Field  string
	Detail string
}

// Error implements error: "ingest: <reason>: field <field>: <detail>".
func (e *DecodeError) Error() string {
	s := "ingest: " + string(e.Reason)
	if e.Field != "" {
		s += ": field " + strconv.Quote(e.Field)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// ReasonOf returns the Reason of the first *DecodeError in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason, true
	}
	return "", false
}

// newErr builds a *DecodeError. Only called on the failure path.
func newErr(r Reason, field, detail string) *DecodeError {
	return &DecodeError{Reason: r, Field: field, Detail: detail}
}

// errAt builds a *DecodeError whose detail names a byte offset in the value.
func errAt(r Reason, detail string, off int) *DecodeError {
	return &DecodeError{Reason: r, Detail: detail + " at offset " + strconv.Itoa(off)}
}
