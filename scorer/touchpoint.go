package scorer

// Touchpoint is one decoded behavioural event, the engine's input. The
// decoders in package ingest fill it; the engine reads it and keeps none of
// its slices or strings beyond Apply unless it copies them.
type Touchpoint struct {
	EventID     string // required, 1-128 bytes
	LeadID      string // one of LeadID and AnonymousID is required
	AnonymousID string
	AccountID   string
	Type        string // required
	Channel     string
	Campaign    string
	// OccurredAt is event time in Unix milliseconds, UTC.
	OccurredAt int64
	// Props holds the string form of the properties the model matches on
	// (and may hold others); Traits the string form of every scalar trait.
	// Numbers are kept as they were written in JSON.
	Props  []Attr
	Traits []Attr
	// RawProperties and RawTraits are the JSON objects as received (nil when
	// absent), kept for the archive.
	RawProperties []byte
	RawTraits     []byte
}

// Attr is one key/value pair of a touchpoint's properties or traits.
type Attr struct {
	Key, Value string
}

// Lead returns the id the engine keys state by: LeadID when set, else
// AnonymousID.
func (t *Touchpoint) Lead() string {
	if t.LeadID != "" {
		return t.LeadID
	}
	return t.AnonymousID
}

// Prop returns the value of property key and whether it is present.
func (t *Touchpoint) Prop(key string) (string, bool) {
	for i := range t.Props {
		if t.Props[i].Key == key {
			return t.Props[i].Value, true
		}
	}
	return "", false
}

// maxKeptAttrs bounds the capacity of Props and Traits that Reset keeps:
// a record with thousands of properties does not leave them (and the
// record their strings point into) pinned in a reused touchpoint. Usual
// records have a handful.
const maxKeptAttrs = 256

// Reset clears t for reuse, keeping the capacity of its slices up to
// maxKeptAttrs.
func (t *Touchpoint) Reset() {
	props, traits := t.Props[:0], t.Traits[:0]
	if cap(props) > maxKeptAttrs {
		props = nil
	}
	if cap(traits) > maxKeptAttrs {
		traits = nil
	}
	*t = Touchpoint{Props: props, Traits: traits}
}
