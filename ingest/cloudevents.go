package ingest

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

// CloudEvents 1.0, structured and binary Kafka modes (see the package doc).

// ceEnvelope holds the context attributes used, whatever the mode.
type ceEnvelope struct {
	specVersion, contentType                      string
	id, typ, time, subject                        string
	leadID, anonymousID, accountID, channel, camp string
}

// ceNames spells the attributes in one mode, for errors.
type ceNames struct {
	data                                          fieldNames // canonical fields inside data
	final                                         fieldNames // required-field messages
	specVersion, contentType                      string
	id, typ, time, subject                        string
	leadID, anonymousID, accountID, channel, camp string
}

var ceStructuredNames = ceNames{
	data: fieldNames{
		eventID: "data.event_id", leadID: "data.lead_id", anonymousID: "data.anonymous_id",
		accountID: "data.account_id", typ: "data.type", channel: "data.channel", campaign: "data.campaign",
		occurredAt: "data.occurred_at", properties: "data.properties", traits: "data.traits",
	},
	final: fieldNames{
		eventID: "id", leadID: "leadid", anonymousID: "anonymousid", typ: "type", occurredAt: "time",
	},
	specVersion: "specversion", contentType: "datacontenttype",
	id: "id", typ: "type", time: "time", subject: "subject",
	leadID: "leadid", anonymousID: "anonymousid", accountID: "accountid", channel: "channel", camp: "campaign",
}

var ceBinaryNames = ceNames{
	data: canonicalNames,
	final: fieldNames{
		eventID: "ce_id", leadID: "ce_leadid", anonymousID: "ce_anonymousid", typ: "ce_type", occurredAt: "ce_time",
	},
	specVersion: "ce_specversion", contentType: "content-type",
	id: "ce_id", typ: "ce_type", time: "ce_time", subject: "ce_subject",
	leadID: "ce_leadid", anonymousID: "ce_anonymousid", accountID: "ce_accountid", channel: "ce_channel", camp: "ce_campaign",
}

// decodeCEStructured maps d.sc.top, a scanned structured-mode event, into tp.
func (d *Decoder) decodeCEStructured(tp *scorer.Touchpoint) error {
	t := &d.sc.top
	n := &ceStructuredNames
	var env ceEnvelope
	var err error
	str := func(dst *string, f field, name string) {
		if err == nil {
			*dst, err = d.optString(t[f], name, MaxValueBytesLimit)
		}
	}
	str(&env.specVersion, fSpecVersion, n.specVersion)
	str(&env.contentType, fDataContentType, n.contentType)
	str(&env.id, fID, n.id)
	str(&env.typ, fType, n.typ)
	str(&env.time, fTime, n.time)
	str(&env.subject, fSubject, n.subject)
	str(&env.leadID, fExtLeadID, n.leadID)
	str(&env.anonymousID, fExtAnonymousID, n.anonymousID)
	str(&env.accountID, fExtAccountID, n.accountID)
	str(&env.channel, fChannel, n.channel)
	str(&env.camp, fCampaign, n.camp)
	if err != nil {
		return err
	}
	if t[fDataBase64].present() {
		return newErr(ReasonUnsupported, "data_base64", "binary data is not scored")
	}
	if err := checkCEEnvelope(&env, n); err != nil {
		return err
	}
	d.sub = slots{}
	ok, err := optObject(t[fData], "data")
	if err != nil {
		return err
	}
	if ok {
		for _, m := range d.sc.members(t[fData]) {
			if f := fieldOf(d.sc.keyBytes(m.key)); f != fNone {
				d.sub[f] = m.val
			}
		}
	}
	return d.applyCE(&env, &d.sub, n, tp)
}

// decodeCEBinary decodes a binary-mode event: attributes in headers, the
// value is the data.
func (d *Decoder) decodeCEBinary(headers []kgo.RecordHeader, tp *scorer.Touchpoint) error {
	var env ceEnvelope
	for i := range headers {
		h := &headers[i]
		var dst *string
		switch h.Key {
		case "ce_specversion":
			dst = &env.specVersion
		case "content-type":
			dst = &env.contentType
		case "ce_id":
			dst = &env.id
		case "ce_type":
			dst = &env.typ
		case "ce_time":
			dst = &env.time
		case "ce_subject":
			dst = &env.subject
		case "ce_leadid":
			dst = &env.leadID
		case "ce_anonymousid":
			dst = &env.anonymousID
		case "ce_accountid":
			dst = &env.accountID
		case "ce_channel":
			dst = &env.channel
		case "ce_campaign":
			dst = &env.camp
		default:
			continue
		}
		if !utf8.Valid(h.Value) {
			return newErr(ReasonInvalidUTF8, h.Key, "header value is not valid UTF-8")
		}
		*dst = aliasString(h.Value)
	}
	n := &ceBinaryNames
	if err := checkCEEnvelope(&env, n); err != nil {
		return err
	}
	d.sc.top = slots{}
	if d.sc.ws(0) < len(d.sc.data) { // an empty value is an event without data
		if err := d.scanTop(d.sc.data); err != nil {
			return err
		}
	}
	return d.applyCE(&env, &d.sc.top, n, tp)
}

// checkCEEnvelope checks specversion and the data content type.
func checkCEEnvelope(env *ceEnvelope, n *ceNames) error {
	switch env.specVersion {
	case "1.0":
	case "":
		return newErr(ReasonMissingField, n.specVersion, "")
	default:
		return newErr(ReasonUnsupported, n.specVersion, "CloudEvents specversion "+strconv.Quote(truncate(env.specVersion, 16))+" (1.0 is supported)")
	}
	if env.contentType != "" && !isJSONMedia(env.contentType) {
		return newErr(ReasonUnsupported, n.contentType, "data content type "+strconv.Quote(truncate(env.contentType, 64))+" is not JSON")
	}
	return nil
}

// applyCE fills tp from the data's canonical fields, then from the
// envelope for what the data did not give, and checks the result.
func (d *Decoder) applyCE(env *ceEnvelope, data *slots, n *ceNames, tp *scorer.Touchpoint) error {
	if err := d.canonicalFields(data, &n.data, tp); err != nil {
		return err
	}
	if err := d.occurredAt(data[fOccurredAt], n.data.occurredAt, tp); err != nil {
		return err
	}
	if env.time != "" {
		t, ok := parseRFC3339Millis(env.time)
		if !ok {
			return newErr(ReasonBadTime, n.time, "not an RFC 3339 time in [1970, 9999]: "+strconv.Quote(truncate(env.time, 64)))
		}
		if !d.haveTime {
			tp.OccurredAt, d.haveTime = t, true
		}
	}
	var err error
	fill := func(dst *string, v, name string, maxLen int) {
		if err != nil || *dst != "" || v == "" {
			return
		}
		if len(v) > maxLen {
			err = newErr(ReasonFieldTooLong, name, strconv.Itoa(len(v))+" bytes, limit "+strconv.Itoa(maxLen))
			return
		}
		*dst = v
	}
	fill(&tp.EventID, env.id, n.id, maxEventIDBytes)
	fill(&tp.Type, ceType(env.typ), n.typ, maxTypeBytes)
	if tp.LeadID == "" && tp.AnonymousID == "" && env.leadID == "" && env.anonymousID == "" {
		fill(&tp.LeadID, env.subject, n.subject, maxIDBytes)
	}
	fill(&tp.LeadID, env.leadID, n.leadID, maxIDBytes)
	fill(&tp.AnonymousID, env.anonymousID, n.anonymousID, maxIDBytes)
	fill(&tp.AccountID, env.accountID, n.accountID, maxOptBytes)
	fill(&tp.Channel, env.channel, n.channel, maxOptBytes)
	fill(&tp.Campaign, env.camp, n.camp, maxOptBytes)
	if err != nil {
		return err
	}
	return d.checkRequired(tp, &n.final)
}

// ceType strips a reverse-DNS prefix: the text after the last '.'.
func ceType(t string) string {
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// mediaType returns the media type of a content type, without parameters
// and surrounding spaces.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// isJSONMedia reports whether ct is application/json, text/json or any
// type with a +json suffix, ignoring case and parameters.
func isJSONMedia(ct string) bool {
	mt := mediaType(ct)
	return strings.EqualFold(mt, "application/json") || strings.EqualFold(mt, "text/json") ||
		(len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json"))
}
