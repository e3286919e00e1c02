package ingest

import (
	"strconv"

	"github.com/leadscore/leadscore/scorer"
)

// Segment spec calls (see the package doc for the mapping table).

var segmentNames = fieldNames{
	eventID: "messageId", leadID: "userId", anonymousID: "anonymousId", accountID: "context.groupId",
	typ: "event", channel: "context.campaign.medium", campaign: "context.campaign.name",
	occurredAt: "timestamp", properties: "properties", traits: "traits",
}

// decodeSegment maps d.sc.top, a scanned Segment call, into tp.
func (d *Decoder) decodeSegment(tp *scorer.Touchpoint) error {
	t := &d.sc.top
	n := &segmentNames
	call, err := d.optString(t[fType], "type", maxTypeBytes)
	if err != nil {
		return err
	}
	switch call {
	case "track":
		ev, err := d.optString(t[fEvent], "event", 4*maxTypeBytes)
		if err != nil {
			return err
		}
		if ev == "" {
			return newErr(ReasonMissingField, "event", "a track call needs an event name")
		}
		if tp.Type = d.snakeCase(ev); tp.Type == "" {
			return newErr(ReasonMissingField, "event", "event name has no letters or digits")
		}
		if len(tp.Type) > maxTypeBytes {
			return newErr(ReasonFieldTooLong, "event", strconv.Itoa(len(tp.Type))+" bytes in snake case, limit "+strconv.Itoa(maxTypeBytes))
		}
	case "page":
		tp.Type = "page_view"
	case "identify":
		tp.Type = "identify"
	case "":
		return newErr(ReasonMissingField, "type", "")
	default:
		return newErr(ReasonUnsupported, "type", "Segment call "+strconv.Quote(truncate(call, 32))+" is not scored (track, page and identify are)")
	}
	if tp.EventID, err = d.optString(t[fMessageID], n.eventID, maxEventIDBytes); err != nil {
		return err
	}
	if tp.LeadID, err = d.optString(t[fUserID], n.leadID, maxIDBytes); err != nil {
		return err
	}
	if tp.AnonymousID, err = d.optString(t[fSegAnonymousID], n.anonymousID, maxIDBytes); err != nil {
		return err
	}
	switch {
	case t[fTimestamp].present():
		err = d.occurredAt(t[fTimestamp], "timestamp", tp)
	case t[fOriginalTimestamp].present():
		err = d.occurredAt(t[fOriginalTimestamp], "originalTimestamp", tp)
	default:
		err = d.occurredAt(t[fSentAt], "sentAt", tp)
	}
	if err != nil {
		return err
	}
	if err := d.segmentContext(t[fContext], tp); err != nil {
		return err
	}
	if err := d.propsAndTraits(t[fProperties], t[fTraits], n, tp); err != nil {
		return err
	}
	return d.checkRequired(tp, n)
}

// segmentContext takes groupId and campaign from the context object.
func (d *Decoder) segmentContext(ctx span, tp *scorer.Touchpoint) error {
	if ok, err := optObject(ctx, "context"); !ok {
		return err
	}
	var group, campaign span
	for _, m := range d.sc.members(ctx) {
		switch string(d.sc.keyBytes(m.key)) {
		case "groupId":
			group = m.val
		case "campaign":
			campaign = m.val
		}
	}
	var err error
	if tp.AccountID, err = d.optString(group, "context.groupId", maxOptBytes); err != nil {
		return err
	}
	if ok, err := optObject(campaign, "context.campaign"); !ok {
		return err
	}
	var name, medium, source span
	for _, m := range d.sc.members(campaign) {
		switch string(d.sc.keyBytes(m.key)) {
		case "name":
			name = m.val
		case "medium":
			medium = m.val
		case "source":
			source = m.val
		}
	}
	if tp.Campaign, err = d.optString(name, "context.campaign.name", maxOptBytes); err != nil {
		return err
	}
	if tp.Channel, err = d.optString(medium, "context.campaign.medium", maxOptBytes); err != nil {
		return err
	}
	if tp.Channel == "" {
		tp.Channel, err = d.optString(source, "context.campaign.source", maxOptBytes)
	}
	return err
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// snakeCase returns s in snake case (rules in the package doc). When s
// already is, it is returned as is; otherwise the result is built in d.buf.
func (d *Decoder) snakeCase(s string) string {
	if isSnake(s) {
		return s
	}
	start := len(d.buf)
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLower(c) || isDigit(c) || c >= 0x80:
		case isUpper(c):
			if i > 0 {
				p := s[i-1]
				if isLower(p) || isDigit(p) || (isUpper(p) && i+1 < len(s) && isLower(s[i+1])) {
					sep = true
				}
			}
			c += 'a' - 'A'
		default:
			sep = true
			continue
		}
		if sep && len(d.buf) > start {
			d.buf = append(d.buf, '_')
		}
		sep = false
		d.buf = append(d.buf, c)
	}
	return aliasString(d.buf[start:])
}

// isSnake reports whether s is non-empty lower-case ASCII letters, digits
// and single inner underscores.
func isSnake(s string) bool {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			if s[i-1] == '_' {
				return false
			}
			continue
		}
		if !isLower(c) && !isDigit(c) {
			return false
		}
	}
	return true
}
