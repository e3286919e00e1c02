// Package ingest turns Kafka records into scorer.Touchpoints: it decodes and
// validates the three accepted input formats, and runs the consumer
// pipeline that feeds the engine and dead-letters what cannot be used
// (SCORING.md 1).
//
// # Pipeline
//
// Pipeline is the scoring consumer. It joins the consumer group on the
// touchpoints topic with franz-go's GroupTransactSession and runs one worker
// goroutine per assigned partition, which owns that partition's
// scorer.Engine: a single writer, no locks on the hot path. Every
// Config.CommitInterval (100 ms) one Kafka transaction commits, together:
// the MQL events, the dead letters, one scored-touchpoint record per scored
// touchpoint (for the archive), one changelog record per lead changed in the
// transaction, and the input offsets. When the transaction commits the
// engines forget their undo logs; when it aborts (a rebalance, a produce
// error) they roll back to the last commit and consumption restarts at the
// committed offsets, so nothing is lost or doubled.
//
// When partitions are assigned, fetching for them waits while their leads
// are restored from the changelog partitions of the same numbers
// (read_committed, to the end, after any open transaction resolved).
// EnsureTopics creates missing topics; the changelog and scored topics have
// the input's partition count. See DESIGN.md for the invariants.
//
// # Decoding
//
// A Decoder is a hand-written, validating JSON scanner: one pass over the
// value notes where each field is, then only the fields the format needs
// are decoded. No encoding/json, no reflection; strings alias
// the record value (or the decoder's buffer when they hold escapes) and
// Touchpoint.Props/Traits keep their capacity, so a typical record decodes
// without allocating. A Decoder is not safe for concurrent use: use one per
// partition worker. Decode never panics, whatever the bytes.
//
// Checks, in order: the value size (oversized); the record key is not
// empty (missing_key); one pass validates the JSON (invalid_json,
// invalid_utf8, too_deep; a value that is not an object is wrong_type);
// the format's fields are mapped and checked (wrong_type, field_too_long,
// bad_time, unsupported, missing_field); last, the key is compared with
// the ids (key_mismatch). The first failure is returned as a *DecodeError
// whose Reason is the dead-letter reason and whose Field names the field
// in the source format's spelling.
//
// The scanner records, in the same pass, the members of the objects the
// mappings read (up to three levels deep; the top level's straight into
// their fields), so nothing is scanned twice;
// spans are four 32-bit words so that they stay in registers. On one core
// a typical 450-byte record decodes in well under a microsecond: run
// go test ./ingest -run '^$' -bench Decode -benchmem -cpu 1.
//
// # Canonical JSON (FormatJSON)
//
//	field         JSON type                 rule
//	event_id      string                    required, 1-128 bytes
//	lead_id       string                    1-256 bytes; this or anonymous_id required
//	anonymous_id  string                    1-256 bytes
//	account_id    string                    optional, at most 256 bytes
//	type          string                    required, 1-128 bytes
//	channel       string                    optional, at most 256 bytes
//	campaign      string                    optional, at most 256 bytes
//	occurred_at   string or integer         required; RFC 3339 or epoch ms (see below)
//	properties    object                    optional
//	traits        object                    optional
//
// A null field is the same as an absent one, and an empty string id the
// same as no id. Unknown top-level fields are ignored (but still must be
// valid JSON). When a key appears twice in an object the last one wins,
// as with encoding/json; this holds at the top level and inside properties
// and traits.
//
// Properties and traits: RawProperties/RawTraits are the objects' bytes as
// received. Each scalar member becomes an Attr: strings decoded, numbers as
// written ("1e3" stays "1e3"), booleans as "true"/"false"; null, nested
// objects and arrays are left out of Props/Traits (they stay in the raw
// bytes). Attrs keep the order of first appearance. When
// DecoderConfig.PropertyKeys is set only those property keys are kept.
//
// Strings: escapes, including \uXXXX surrogate pairs, are decoded; a lone
// surrogate escape becomes U+FFFD (as encoding/json does); raw bytes that
// are not UTF-8 give invalid_utf8.
//
// Event time: an RFC 3339 string with any offset, converted to UTC (upper
// case T and Z, fractional seconds truncated to milliseconds, no leap
// second), or an integer of epoch milliseconds (no fraction, exponent or
// sign). Both must lie between 1970-01-01 and the end of year 9999;
// anything else, "yesterday", "2024-13-01T00:00:00Z", 1e30 or -1, is
// bad_time.
//
// # Segment (FormatSegment)
//
//	Segment                                  Touchpoint
//	type track | page | identify             (screen, group, alias: unsupported)
//	messageId                                EventID
//	userId                                   LeadID
//	anonymousId                              AnonymousID
//	timestamp, else originalTimestamp,       OccurredAt (the first present one
//	  else sentAt                              is used; a bad one is bad_time)
//	context.groupId                          AccountID
//	context.campaign.name                    Campaign
//	context.campaign.medium, else .source    Channel
//	track: event, in snake_case              Type ("Form Submitted" -> form_submitted,
//	                                           "demoRequested" -> demo_requested)
//	page                                     Type "page_view"
//	identify                                 Type "identify"
//	properties                               Props, RawProperties
//	traits (any call type)                   Traits, RawTraits
//
// Snake case: ASCII letters are lower-cased, a word break is inserted at a
// lower-to-upper change (and before the last capital of an acronym
// followed by a lower-case letter, "APIKey" -> api_key), and every run of
// characters other than letters, digits and non-ASCII becomes one '_';
// leading and trailing '_' are dropped.
//
// # CloudEvents 1.0 (FormatCloudEvents)
//
// Structured mode: the value is a JSON event with "specversion" (Kafka
// content-type application/cloudevents+json). Binary mode: the attributes
// are Kafka headers ce_specversion, ce_id, ce_type, ce_time, ce_subject and
// ce_<extension>, content-type says the data's media type, and the value
// is the data. specversion must be "1.0"; the data must be a JSON object
// (datacontenttype, or the content-type header, absent or application/json
// or any */json or */*+json type; data_base64 is unsupported).
//
//	attribute                    Touchpoint
//	id                           EventID
//	type, after its last '.'     Type ("com.acme.lead.page_view" -> page_view)
//	time                         OccurredAt
//	leadid (extension)           LeadID
//	anonymousid (extension)      AnonymousID
//	subject                      LeadID, only when no lead or anonymous id is given otherwise
//	accountid, channel, campaign AccountID, Channel, Campaign (extensions)
//	data                         any canonical field (lead_id, anonymous_id,
//	                             account_id, channel, campaign, event_id, type,
//	                             occurred_at, properties, traits)
//
// A canonical field inside data wins over the attribute it corresponds to:
// the envelope supplies defaults. A time attribute that is present must
// parse even when data carries occurred_at. The "source" attribute is not
// required. Attributes other than those above are ignored.
//
// # Auto-detection (FormatAuto)
//
// A ce_specversion header, or a content-type header of
// application/cloudevents+json, means CloudEvents. Otherwise the same single
// pass that validates the value notes which fields are there: a top-level
// "specversion" means CloudEvents; "messageId", or a "type" of track, page,
// identify, screen, group or alias together with "userId" or
// "anonymousId", means Segment; anything else is canonical JSON.
//
// # Record key
//
// The Kafka key must be the lead id or the anonymous id of the touchpoint
// (either, when both are set): an empty key is missing_key, another key is
// key_mismatch.
package ingest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

// Format is an input format.
type Format uint8

// Input formats.
const (
	// FormatAuto detects the format of each record (see the package doc).
	FormatAuto Format = iota
	// FormatJSON is leadscore's canonical JSON (SCORING.md 1).
	FormatJSON
	// FormatSegment is a Segment track, page or identify call.
	FormatSegment
	// FormatCloudEvents is a CloudEvents 1.0 event, structured or binary.
	FormatCloudEvents
)

var formatNames = [...]string{"auto", "json", "segment", "cloudevents"}

// ParseFormat parses "auto", "json", "segment" or "cloudevents".
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames {
		if s == n {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("ingest: unknown format %q (want auto, json, segment or cloudevents)", s)
}

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Field limits, in bytes.
const (
	maxEventIDBytes = 128
	maxIDBytes      = 256 // lead_id, anonymous_id
	maxTypeBytes    = 128
	maxOptBytes     = 256 // account_id, channel, campaign
)

// maxKeptBuf bounds the decoded-string buffer kept between records: a
// partition worker has 2*scorer.PrefetchBatch decoders.
const maxKeptBuf = 1 << 14

// MaxValueBytesLimit is the largest DecoderConfig.MaxValueBytes: it keeps
// member counts within span.info.
const MaxValueBytesLimit = 1 << 28

// maxMaxDepth is the largest DecoderConfig.MaxDepth.
const maxMaxDepth = 10000

// DecoderConfig configures a Decoder. The zero value is valid.
type DecoderConfig struct {
	// Format of the records. Default FormatAuto.
	Format Format
	// MaxValueBytes is the largest record value accepted; larger ones are
	// oversized. Default 1 MiB (1<<20); at most 256 MiB.
	MaxValueBytes int
	// MaxDepth is the deepest nesting of objects and arrays accepted, the
	// top-level object counting 1; deeper is too_deep. Default 32; at most
	// 10000.
	MaxDepth int
	// PropertyKeys, when non-empty, are the only property keys put in
	// Touchpoint.Props (the ones the model matches on); RawProperties still
	// holds everything. Default nil: every scalar property.
	PropertyKeys []string
	// FitTraits are the traits the model's fit rules read, which the
	// engine keeps in the lead's state: a value of one of them longer than
	// MaxFitTraitBytes is field_too_long, so that no touchpoint can make a
	// lead's state too large for its changelog topic. Other traits are
	// not limited.
	FitTraits []string
}

// MaxFitTraitBytes bounds the value of a trait a fit rule reads
// (DecoderConfig.FitTraits).
const MaxFitTraitBytes = 1024

// Validate reports the first invalid field. Zero values mean the default.
func (c *DecoderConfig) Validate() error {
	switch {
	case c.Format > FormatCloudEvents:
		return fmt.Errorf("ingest: DecoderConfig.Format: unknown format %d", c.Format)
	case c.MaxValueBytes < 0 || c.MaxValueBytes > MaxValueBytesLimit:
		return fmt.Errorf("ingest: DecoderConfig.MaxValueBytes: %d not in [0, %d]", c.MaxValueBytes, MaxValueBytesLimit)
	case c.MaxDepth < 0 || c.MaxDepth > maxMaxDepth:
		return fmt.Errorf("ingest: DecoderConfig.MaxDepth: %d not in [0, %d]", c.MaxDepth, maxMaxDepth)
	}
	for i, k := range c.PropertyKeys {
		if !utf8.ValidString(k) {
			return fmt.Errorf("ingest: DecoderConfig.PropertyKeys[%d]: not valid UTF-8", i)
		}
	}
	for i, k := range c.FitTraits {
		if !utf8.ValidString(k) {
			return fmt.Errorf("ingest: DecoderConfig.FitTraits[%d]: not valid UTF-8", i)
		}
	}
	return nil
}

// field identifies a top-level key of any format; the scan records each
// one's span in Decoder.slots.
type field uint8

const (
	fNone field = iota
	// canonical
	fEventID
	fLeadID
	fAnonymousID
	fAccountID
	fType
	fChannel
	fCampaign
	fOccurredAt
	fProperties
	fTraits
	// Segment
	fMessageID
	fUserID
	fSegAnonymousID
	fTimestamp
	fOriginalTimestamp
	fSentAt
	fEvent
	fContext
	// CloudEvents
	fSpecVersion
	fID
	fTime
	fSubject
	fData
	fDataBase64
	fDataContentType
	fExtLeadID
	fExtAnonymousID
	fExtAccountID
	numFields
)

func fieldOf(key []byte) field {
	switch string(key) {
	case "event_id":
		return fEventID
	case "lead_id":
		return fLeadID
	case "anonymous_id":
		return fAnonymousID
	case "account_id":
		return fAccountID
	case "type":
		return fType
	case "channel":
		return fChannel
	case "campaign":
		return fCampaign
	case "occurred_at":
		return fOccurredAt
	case "properties":
		return fProperties
	case "traits":
		return fTraits
	case "messageId":
		return fMessageID
	case "userId":
		return fUserID
	case "anonymousId":
		return fSegAnonymousID
	case "timestamp":
		return fTimestamp
	case "originalTimestamp":
		return fOriginalTimestamp
	case "sentAt":
		return fSentAt
	case "event":
		return fEvent
	case "context":
		return fContext
	case "specversion":
		return fSpecVersion
	case "id":
		return fID
	case "time":
		return fTime
	case "subject":
		return fSubject
	case "data":
		return fData
	case "data_base64":
		return fDataBase64
	case "datacontenttype":
		return fDataContentType
	case "leadid":
		return fExtLeadID
	case "anonymousid":
		return fExtAnonymousID
	case "accountid":
		return fExtAccountID
	}
	return fNone
}

type slots [numFields]span

// Decoder decodes records into touchpoints. It is not safe for concurrent
// use; it reuses its buffers from one Decode to the next.
type Decoder struct {
	cfg      DecoderConfig
	propKeys map[string]struct{} // PropertyKeys, when more than a few
	sc       scanner
	sub      slots  // CloudEvents data object
	buf      []byte // decoded strings, reset by each Decode
	dead     []bool // attrs removed by a later duplicate, scratch
	attrIdx  map[string]int
	last     Format
	haveTime bool // OccurredAt was set (0 is a valid time)
}

// NewDecoder validates cfg, applies defaults and returns a Decoder.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = 1 << 20
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = 32
	}
	cfg.PropertyKeys = slices.Clone(cfg.PropertyKeys)
	cfg.FitTraits = slices.Clone(cfg.FitTraits)
	d := &Decoder{cfg: cfg, buf: make([]byte, 0, 256)}
	if len(cfg.PropertyKeys) > 8 {
		d.propKeys = make(map[string]struct{}, len(cfg.PropertyKeys))
		for _, k := range cfg.PropertyKeys {
			d.propKeys[k] = struct{}{}
		}
	}
	d.sc.maxDepth = cfg.MaxDepth
	return d, nil
}

// LastFormat returns the format of the last record decoded successfully or
// not, after auto-detection (FormatAuto when decoding stopped before the
// format was known).
func (d *Decoder) LastFormat() Format { return d.last }

// Decode fills tp (it calls tp.Reset first) from one record. headers are
// the record's Kafka headers (CloudEvents binary mode). tp's strings and
// raw slices may alias value, headers or a buffer of d that stays valid
// until the next Decode call: the caller copies what it keeps. It returns
// a *DecodeError for unusable input, after which tp's contents are
// unspecified; it never panics.
func (d *Decoder) Decode(key, value []byte, headers []kgo.RecordHeader, tp *scorer.Touchpoint) error {
	tp.Reset()
	d.last = FormatAuto
	if len(value) > d.cfg.MaxValueBytes {
		return newErr(ReasonOversized, "", strconv.Itoa(len(value))+" bytes, limit "+strconv.Itoa(d.cfg.MaxValueBytes))
	}
	if len(key) == 0 {
		return newErr(ReasonMissingKey, "", "record key is empty")
	}
	d.buf = d.buf[:0]
	if cap(d.buf) > maxKeptBuf { // do not pin a huge record's buffer
		d.buf = make([]byte, 0, 256)
	}
	if cap(d.dead) > maxKeptMembers {
		d.dead = nil
	}
	d.haveTime = false
	d.sc.reset(value)

	format := d.cfg.Format
	binaryCE := false
	if format == FormatAuto || format == FormatCloudEvents {
		for i := range headers {
			switch h := &headers[i]; h.Key {
			case "ce_specversion":
				binaryCE = true
			case "content-type":
				if format == FormatAuto && strings.EqualFold(mediaType(aliasString(h.Value)), "application/cloudevents+json") {
					format = FormatCloudEvents
				}
			}
		}
		if binaryCE {
			format = FormatCloudEvents
		}
	}
	d.last = format

	var err error
	if binaryCE {
		err = d.decodeCEBinary(headers, tp)
	} else {
		if err = d.scanTop(value); err != nil {
			return err
		}
		if format == FormatAuto {
			format = d.detect()
			d.last = format
		}
		switch format {
		case FormatSegment:
			err = d.decodeSegment(tp)
		case FormatCloudEvents:
			err = d.decodeCEStructured(tp)
		default:
			err = d.decodeCanonical(&d.sc.top, &canonicalNames, tp)
		}
	}
	if err != nil {
		return err
	}
	if (tp.LeadID == "" || string(key) != tp.LeadID) && (tp.AnonymousID == "" || string(key) != tp.AnonymousID) {
		return newErr(ReasonKeyMismatch, "", "record key equals neither lead_id nor anonymous_id")
	}
	return nil
}

// scanTop validates value, which must be one JSON object, and records the
// span of each known top-level member in d.sc.top (the last one wins).
func (d *Decoder) scanTop(value []byte) error {
	s := &d.sc
	s.top = slots{}
	s.reset(value)
	i := s.ws(0)
	if i >= len(value) {
		return errAt(ReasonInvalidJSON, "empty value", i)
	}
	v, j, err := s.value(i, 1)
	if err != nil {
		return err
	}
	if j = s.ws(j); j != len(value) {
		return errAt(ReasonInvalidJSON, "data after the top-level value", j)
	}
	if v.kind() != kObject {
		return newErr(ReasonWrongType, "", "value is not a JSON object")
	}
	return nil
}

// detect picks the format of a structured record from its top-level keys.
func (d *Decoder) detect() Format {
	t := &d.sc.top
	if t[fSpecVersion].kind() != kNone {
		return FormatCloudEvents
	}
	if t[fMessageID].kind() != kNone {
		return FormatSegment
	}
	if t[fType].kind() == kString && (t[fUserID].kind() != kNone || t[fSegAnonymousID].kind() != kNone) {
		switch d.raw(t[fType]) {
		case "track", "page", "identify", "screen", "group", "alias":
			return FormatSegment
		}
	}
	return FormatJSON
}

// raw returns a span's bytes as a string without decoding escapes.
func (d *Decoder) raw(s span) string { return aliasString(d.sc.data[s.start:s.end]) }

// str returns the decoded string of a kString span.
func (d *Decoder) str(s span) string {
	if s.esc() {
		return d.unescaped(s.start, s.end)
	}
	return d.sc.plain(s)
}

// unescaped decodes the escaped string content data[start:end] into
// d.buf and returns it (valid until the next Decode).
func (d *Decoder) unescaped(start, end int32) string {
	n := len(d.buf)
	d.buf = unescape(d.buf, d.sc.data[start:end])
	return aliasString(d.buf[n:])
}

// optString returns the string at s, "" when absent or null, or a
// wrong_type/field_too_long error naming name. A string without escapes
// within the limit, the common case, returns before the checks.
func (d *Decoder) optString(s span, name string, maxLen int) (string, error) {
	if s.plainWithin(maxLen) {
		return d.sc.plain(s), nil
	}
	return d.optStringSlow(s, name, maxLen)
}

func (d *Decoder) optStringSlow(s span, name string, maxLen int) (string, error) {
	switch s.kind() {
	case kNone, kNull:
		return "", nil
	case kString:
		v := d.str(s)
		if len(v) > maxLen {
			return "", newErr(ReasonFieldTooLong, name, strconv.Itoa(len(v))+" bytes, limit "+strconv.Itoa(maxLen))
		}
		return v, nil
	}
	return "", newErr(ReasonWrongType, name, "want string, got "+s.kind().String())
}

// optObject checks that s is an object, absent or null.
func optObject(s span, name string) (bool, error) {
	switch s.kind() {
	case kNone, kNull:
		return false, nil
	case kObject:
		return true, nil
	}
	return false, newErr(ReasonWrongType, name, "want object, got "+s.kind().String())
}

// fieldNames spells the touchpoint fields in a source format, for errors.
type fieldNames struct {
	eventID, leadID, anonymousID, accountID, typ, channel, campaign, occurredAt, properties, traits string
}

var canonicalNames = fieldNames{
	eventID: "event_id", leadID: "lead_id", anonymousID: "anonymous_id", accountID: "account_id",
	typ: "type", channel: "channel", campaign: "campaign", occurredAt: "occurred_at",
	properties: "properties", traits: "traits",
}

// decodeCanonical maps canonical fields from sl into tp and checks them.
func (d *Decoder) decodeCanonical(sl *slots, n *fieldNames, tp *scorer.Touchpoint) error {
	if err := d.canonicalFields(sl, n, tp); err != nil {
		return err
	}
	if err := d.occurredAt(sl[fOccurredAt], n.occurredAt, tp); err != nil {
		return err
	}
	return d.checkRequired(tp, n)
}

// canonicalFields sets every canonical field present in sl, leaving the
// others of tp as they are; it does not check required fields.
func (d *Decoder) canonicalFields(sl *slots, n *fieldNames, tp *scorer.Touchpoint) error {
	// The common case, each field a string without escapes within its
	// limit, or absent, inlined; anything else takes the checked path.
	if !d.plainInto(&tp.EventID, sl[fEventID], maxEventIDBytes) ||
		!d.plainInto(&tp.LeadID, sl[fLeadID], maxIDBytes) ||
		!d.plainInto(&tp.AnonymousID, sl[fAnonymousID], maxIDBytes) ||
		!d.plainInto(&tp.AccountID, sl[fAccountID], maxOptBytes) ||
		!d.plainInto(&tp.Type, sl[fType], maxTypeBytes) ||
		!d.plainInto(&tp.Channel, sl[fChannel], maxOptBytes) ||
		!d.plainInto(&tp.Campaign, sl[fCampaign], maxOptBytes) {
		if err := d.stringFields(sl, n, tp); err != nil {
			return err
		}
	}
	return d.propsAndTraits(sl[fProperties], sl[fTraits], n, tp)
}

// plainInto sets *dst to the string at s and returns true when s is a
// string without escapes within maxLen bytes (left as it is when empty),
// or absent. Otherwise it returns false and leaves *dst alone.
func (d *Decoder) plainInto(dst *string, s span, maxLen int) bool {
	if s.plainWithin(maxLen) {
		if s.end > s.start {
			*dst = d.sc.plain(s)
		}
		return true
	}
	return s.kind() == kNone
}

// stringFields is the checked path of canonicalFields' strings: escapes,
// nulls, wrong types and oversized values.
func (d *Decoder) stringFields(sl *slots, n *fieldNames, tp *scorer.Touchpoint) error {
	var err error
	set := func(dst *string, s span, name string, maxLen int) {
		if err != nil {
			return
		}
		var v string
		if v, err = d.optString(s, name, maxLen); v != "" {
			*dst = v
		}
	}
	set(&tp.EventID, sl[fEventID], n.eventID, maxEventIDBytes)
	set(&tp.LeadID, sl[fLeadID], n.leadID, maxIDBytes)
	set(&tp.AnonymousID, sl[fAnonymousID], n.anonymousID, maxIDBytes)
	set(&tp.AccountID, sl[fAccountID], n.accountID, maxOptBytes)
	set(&tp.Type, sl[fType], n.typ, maxTypeBytes)
	set(&tp.Channel, sl[fChannel], n.channel, maxOptBytes)
	set(&tp.Campaign, sl[fCampaign], n.campaign, maxOptBytes)
	return err
}

// propsAndTraits fills Props/Traits and the raw objects.
func (d *Decoder) propsAndTraits(props, traits span, n *fieldNames, tp *scorer.Touchpoint) error {
	if ok, err := optObject(props, n.properties); err != nil {
		return err
	} else if ok {
		tp.RawProperties = d.sc.data[props.start:props.end:props.end]
		tp.Props = d.attrs(props, tp.Props[:0], true)
	}
	if ok, err := optObject(traits, n.traits); err != nil {
		return err
	} else if ok {
		tp.RawTraits = d.sc.data[traits.start:traits.end:traits.end]
		tp.Traits = d.attrs(traits, tp.Traits[:0], false)
		for i := range tp.Traits {
			if a := &tp.Traits[i]; len(a.Value) > MaxFitTraitBytes && slices.Contains(d.cfg.FitTraits, a.Key) {
				return newErr(ReasonFieldTooLong, n.traits+"."+a.Key,
					strconv.Itoa(len(a.Value))+" bytes, limit "+strconv.Itoa(MaxFitTraitBytes)+" for a trait a fit rule reads")
			}
		}
	}
	return nil
}

// occurredAt parses an event time span (string or integer) into tp when
// present; absence is checked by checkRequired.
func (d *Decoder) occurredAt(s span, name string, tp *scorer.Touchpoint) error {
	switch s.kind() {
	case kNone, kNull:
		return nil
	case kString:
		t, ok := parseRFC3339Millis(d.str(s))
		if !ok {
			return newErr(ReasonBadTime, name, "not an RFC 3339 time in [1970, 9999]: "+strconv.Quote(truncate(d.str(s), 64)))
		}
		tp.OccurredAt = t
	case kNumber:
		t, ok := parseEpochMillis(d.sc.data[s.start:s.end])
		if !ok {
			return newErr(ReasonBadTime, name, "not an integer of epoch milliseconds in [1970, 9999]: "+truncate(d.raw(s), 64))
		}
		tp.OccurredAt = t
	default:
		return newErr(ReasonWrongType, name, "want string or number, got "+s.kind().String())
	}
	d.haveTime = true
	return nil
}

// checkRequired checks that the required fields were set.
func (d *Decoder) checkRequired(tp *scorer.Touchpoint, n *fieldNames) error {
	switch {
	case tp.EventID == "":
		return newErr(ReasonMissingField, n.eventID, "")
	case tp.LeadID == "" && tp.AnonymousID == "":
		return newErr(ReasonMissingField, n.leadID, "one of "+n.leadID+" and "+n.anonymousID+" is required")
	case tp.Type == "":
		return newErr(ReasonMissingField, n.typ, "")
	case !d.haveTime:
		return newErr(ReasonMissingField, n.occurredAt, "")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// attrs appends the scalar members of the validated object obj to dst,
// last duplicate winning (see the package doc). filter applies
// PropertyKeys.
func (d *Decoder) attrs(obj span, dst []scorer.Attr, filter bool) []scorer.Attr {
	filter = filter && len(d.cfg.PropertyKeys) > 0
	ms := d.sc.members(obj)
	// dead marks the attrs a later non-scalar duplicate removes; nil until
	// one does, which is rare.
	var dead []bool
	useMap := false
	for i := range ms {
		k, v := ms[i].key, ms[i].val
		key := d.sc.plain(k) // d.str, inlined by hand for the usual key without escapes
		if k.esc() {
			key = d.unescaped(k.start, k.end)
		}
		if filter && !d.wantProp(key) {
			continue
		}
		var val string
		scalar := true
		switch v.kind() {
		case kString:
			if val = d.sc.plain(v); v.esc() {
				val = d.unescaped(v.start, v.end)
			}
		case kNumber:
			val = d.raw(v)
		case kTrue:
			val = "true"
		case kFalse:
			val = "false"
		default:
			scalar = false
		}
		j := -1
		if useMap {
			if x, ok := d.attrIdx[key]; ok {
				j = x
			}
		} else {
			for x := range dst {
				if dst[x].Key == key {
					j = x
					break
				}
			}
		}
		if j >= 0 {
			switch {
			case scalar:
				dst[j].Value = val
				if dead != nil {
					dead[j] = false
				}
			case dead == nil:
				dead = append(d.dead[:0], make([]bool, len(dst))...)
				dead[j] = true
			default:
				dead[j] = true
			}
			continue
		}
		if !scalar {
			continue
		}
		dst = append(dst, scorer.Attr{Key: key, Value: val})
		if dead != nil {
			dead = append(dead, false)
		}
		if useMap {
			d.attrIdx[key] = len(dst) - 1
		} else if len(dst) == 16 {
			// Many members: switch to a map so duplicates stay O(1).
			useMap = true
			if d.attrIdx == nil {
				d.attrIdx = make(map[string]int, 64)
			}
			clear(d.attrIdx)
			for x := range dst {
				d.attrIdx[dst[x].Key] = x
			}
		}
	}
	if dead != nil {
		w := 0
		for x := range dst {
			if !dead[x] {
				dst[w] = dst[x]
				w++
			}
		}
		clear(dst[w:])
		dst = dst[:w]
		d.dead = dead
	}
	if useMap {
		if len(d.attrIdx) > 1024 {
			d.attrIdx = nil // do not keep a huge map for the next records
		} else {
			clear(d.attrIdx)
		}
	}
	return dst
}

func (d *Decoder) wantProp(key string) bool {
	if d.propKeys != nil {
		_, ok := d.propKeys[key]
		return ok
	}
	for _, k := range d.cfg.PropertyKeys {
		if k == key {
			return true
		}
	}
	return false
}
