package synth

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// attr is one member of a touchpoint's properties or traits: a string, an
// integer or a boolean.
type attr struct {
	key  string
	s    string // attrString
	b    []byte // attrBytes; may alias the touch's scratch space
	num  int64  // attrInt, attrBool (0 or 1)
	kind attrKind
}

type attrKind uint8

const (
	attrString attrKind = iota
	attrBytes
	attrInt
	attrBool
)

// timeForm says how occurred_at is written.
type timeForm uint8

const (
	timeRFC3339    timeForm = iota // "2026-03-01T12:00:00.123Z"
	timeRFC3339Off                 // the same instant with a +02:00 offset
	timeEpochMilli                 // 1772366400123 (canonical JSON only)
)

// corruption makes a record deliberately unusable in one way. The zero
// value leaves it valid.
type corruption uint8

const (
	corruptNone corruption = iota
	corruptNoEventID
	corruptBadTime
	corruptWrongType
	corruptLongEventID
)

// touch is one touchpoint before encoding. Its slices and buffers are
// reused from record to record.
type touch struct {
	eventID  [36]byte
	leadID   []byte
	anonID   []byte
	account  []byte
	typ      string
	channel  string
	campaign string
	at       int64 // Unix ms
	form     timeForm
	props    []attr
	traits   []attr
	corrupt  corruption
	badTime  string
	scratch  []byte // backing store for attr strings built on the fly
}

func (t *touch) reset() {
	t.leadID = t.leadID[:0]
	t.anonID = t.anonID[:0]
	t.account = t.account[:0]
	t.typ, t.channel, t.campaign = "", "", ""
	t.at = 0
	t.form = timeRFC3339
	t.props = t.props[:0]
	t.traits = t.traits[:0]
	t.corrupt = corruptNone
	t.badTime = ""
	t.scratch = t.scratch[:0]
}

// prop adds a string property.
func (t *touch) prop(key, val string) {
	t.props = append(t.props, attr{key: key, s: val})
}

// propBytes adds a string property whose value is built with f into scratch
// space (no allocation once the scratch buffer has grown).
func (t *touch) propBytes(key string, f func([]byte) []byte) {
	start := len(t.scratch)
	t.scratch = f(t.scratch)
	t.props = append(t.props, attr{key: key, b: t.scratch[start:len(t.scratch):len(t.scratch)], kind: attrBytes})
}

func (t *touch) propInt(key string, v int64) {
	t.props = append(t.props, attr{key: key, num: v, kind: attrInt})
}

func (t *touch) propBool(key string, v bool) {
	var n int64
	if v {
		n = 1
	}
	t.props = append(t.props, attr{key: key, num: n, kind: attrBool})
}

// key returns the record key the touchpoint belongs to.
func (t *touch) key() []byte {
	if len(t.leadID) > 0 {
		return t.leadID
	}
	return t.anonID
}

var offsetZone = time.FixedZone("", 2*3600)

// appendTime appends occurred_at in form f. String forms are quoted.
func appendTime(dst []byte, ms int64, f timeForm) []byte {
	if f == timeEpochMilli {
		return strconv.AppendInt(dst, ms, 10)
	}
	tm := time.UnixMilli(ms).UTC()
	if f == timeRFC3339Off {
		tm = tm.In(offsetZone)
	}
	dst = append(dst, '"')
	dst = tm.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	return append(dst, '"')
}

// appendString appends s as a JSON string. Control characters, quotes and
// backslashes are escaped; other bytes (valid UTF-8) are copied.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			continue
		}
		if c >= utf8.RuneSelf {
			continue // multi-byte UTF-8: the generator only writes valid UTF-8
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendField appends ,"key": (without the comma for the first field, when
// dst ends with '{').
func appendField(dst []byte, key string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendStrField[S ~string | ~[]byte](dst []byte, key string, v S) []byte {
	if len(v) == 0 {
		return dst
	}
	return appendString(appendField(dst, key), v)
}

// appendAttrs appends a JSON object of attrs.
func appendAttrs(dst []byte, as []attr) []byte {
	dst = append(dst, '{')
	for i := range as {
		a := &as[i]
		dst = appendField(dst, a.key)
		switch a.kind {
		case attrString:
			dst = appendString(dst, a.s)
		case attrBytes:
			dst = appendString(dst, a.b)
		case attrInt:
			dst = strconv.AppendInt(dst, a.num, 10)
		case attrBool:
			dst = strconv.AppendBool(dst, a.num != 0)
		}
	}
	return append(dst, '}')
}

// appendEventID appends the event id, or for corruptLongEventID an id over
// the 128-byte limit.
func (t *touch) appendEventID(dst []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, t.eventID[:]...)
	if t.corrupt == corruptLongEventID {
		for range 4 {
			dst = append(dst, '-')
			dst = append(dst, t.eventID[:]...)
		}
	}
	return append(dst, '"')
}

// appendOccurredAt appends the event time in t's form, or the bad time.
func (t *touch) appendOccurredAt(dst []byte, form timeForm) []byte {
	if t.corrupt == corruptBadTime {
		return appendString(dst, t.badTime)
	}
	return appendTime(dst, t.at, form)
}

// appendProps appends the properties object, or for corruptWrongType a
// string where an object belongs.
func (t *touch) appendProps(dst []byte) []byte {
	if t.corrupt == corruptWrongType {
		return appendString(dst, "url=/pricing")
	}
	return appendAttrs(dst, t.props)
}

// encodeJSON appends t as leadscore's canonical JSON (SCORING.md 1).
func encodeJSON(dst []byte, t *touch) []byte {
	dst = append(dst, '{')
	if t.corrupt != corruptNoEventID {
		dst = t.appendEventID(appendField(dst, "event_id"))
	}
	dst = appendStrField(dst, "lead_id", t.leadID)
	dst = appendStrField(dst, "anonymous_id", t.anonID)
	dst = appendStrField(dst, "account_id", t.account)
	dst = appendStrField(dst, "type", t.typ)
	dst = appendStrField(dst, "channel", t.channel)
	dst = appendStrField(dst, "campaign", t.campaign)
	dst = t.appendOccurredAt(appendField(dst, "occurred_at"), t.form)
	if len(t.props) > 0 || t.corrupt == corruptWrongType {
		dst = t.appendProps(appendField(dst, "properties"))
	}
	if len(t.traits) > 0 {
		dst = appendAttrs(appendField(dst, "traits"), t.traits)
	}
	return append(dst, '}')
}

// segmentEvents are the Segment track event names of the touchpoint types;
// ingest turns them back into the type by snake-casing.
var segmentEvents = map[string]string{
	"email_open":         "Email Open",
	"email_click":        "Email Click",
	"form_submit":        "Form Submit",
	"content_download":   "Content Download",
	"webinar_registered": "Webinar Registered",
	"webinar_attended":   "Webinar Attended",
	"event_attended":     "Event Attended",
	"demo_request":       "Demo Request",
	"unsubscribe":        "Unsubscribe",
	"email_bounce":       "Email Bounce",
}

// encodeSegment appends t as a Segment call: page for page_view, track
// otherwise. Channel and campaign go to context.campaign (medium, name),
// the account to context.groupId.
func encodeSegment(dst []byte, t *touch) []byte {
	dst = append(dst, '{')
	if t.typ == "page_view" {
		dst = appendStrField(dst, "type", "page")
	} else {
		dst = appendStrField(dst, "type", "track")
		ev, ok := segmentEvents[t.typ]
		if !ok {
			ev = t.typ
		}
		dst = appendStrField(dst, "event", ev)
	}
	if t.corrupt != corruptNoEventID {
		dst = t.appendEventID(appendField(dst, "messageId"))
	}
	dst = appendStrField(dst, "userId", t.leadID)
	dst = appendStrField(dst, "anonymousId", t.anonID)
	form := t.form
	if form == timeEpochMilli {
		form = timeRFC3339 // Segment timestamps are ISO 8601 strings
	}
	dst = t.appendOccurredAt(appendField(dst, "timestamp"), form)
	if len(t.account) > 0 || t.channel != "" || t.campaign != "" {
		dst = append(appendField(dst, "context"), '{')
		dst = appendStrField(dst, "groupId", t.account)
		if t.channel != "" || t.campaign != "" {
			dst = append(appendField(dst, "campaign"), '{')
			dst = appendStrField(dst, "name", t.campaign)
			dst = appendStrField(dst, "medium", t.channel)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	if len(t.props) > 0 || t.corrupt == corruptWrongType {
		dst = t.appendProps(appendField(dst, "properties"))
	}
	if len(t.traits) > 0 {
		dst = appendAttrs(appendField(dst, "traits"), t.traits)
	}
	return append(dst, '}')
}

// ceTypePrefix is prepended to the touchpoint type to form the CloudEvents
// type attribute; ingest keeps what follows the last '.'.
const ceTypePrefix = "com.example.marketing.touchpoint."

// encodeCloudEvents appends t as a structured-mode CloudEvent: id, time and
// type as attributes, the ids, channel and campaign as extension
// attributes, properties and traits in data.
func encodeCloudEvents(dst []byte, t *touch) []byte {
	dst = append(dst, '{')
	dst = appendStrField(dst, "specversion", "1.0")
	if t.corrupt != corruptNoEventID {
		dst = t.appendEventID(appendField(dst, "id"))
	}
	dst = appendStrField(dst, "source", "/leadscore/synth")
	dst = append(appendField(dst, "type"), '"')
	dst = append(dst, ceTypePrefix...)
	dst = append(dst, t.typ...)
	dst = append(dst, '"')
	form := t.form
	if form == timeEpochMilli {
		form = timeRFC3339 // CloudEvents time is RFC 3339
	}
	dst = t.appendOccurredAt(appendField(dst, "time"), form)
	dst = appendStrField(dst, "leadid", t.leadID)
	dst = appendStrField(dst, "anonymousid", t.anonID)
	dst = appendStrField(dst, "accountid", t.account)
	dst = appendStrField(dst, "channel", t.channel)
	dst = appendStrField(dst, "campaign", t.campaign)
	dst = appendStrField(dst, "datacontenttype", "application/json")
	dst = append(appendField(dst, "data"), '{')
	if len(t.props) > 0 || t.corrupt == corruptWrongType {
		dst = t.appendProps(appendField(dst, "properties"))
	}
	if len(t.traits) > 0 {
		dst = appendAttrs(appendField(dst, "traits"), t.traits)
	}
	return append(dst, '}', '}')
}
