package synth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxReplayLine is the longest line ReplayJSONL accepts.
const maxReplayLine = 16 << 20

// ReplayJSONL returns a Source reading records from r, one JSON object per
// line (blank lines are skipped), for topic ("" means DefaultTopic).
//
// A line is either a bare touchpoint, sent as the value byte for byte with
// its lead_id (else anonymous_id) as the key:
//
//	{"event_id":"e1","lead_id":"lead-000001","type":"page_view","occurred_at":"2026-11-02T09:00:00Z"}
//
// or, when it has a top-level "value" member, an envelope that spells out
// the record, for sending what a bare line cannot (bad records, other
// formats, headers):
//
//	{"key":"lead-000001","value":{...},"headers":{"content-type":"application/json"},"partition":0}
//
// value: an object or array is sent as written, a string as its contents
// (for invalid JSON), null as no value. key: a string; "" or null for no
// key; when absent it is taken from the value's lead_id or anonymous_id.
// headers: optional, string values, sent in key order. partition: optional,
// honoured only when the client uses kgo.ManualPartitioner.
//
// A line that is not valid JSON, not an object, a bare touchpoint without
// an id, or an envelope with an unknown or mistyped member is an error
// naming the line number ("synth: replay line 12: ..."); so is a line over
// 16 MiB. The Source returns io.EOF after the last line and is not safe for
// concurrent use.
func ReplayJSONL(r io.Reader, topic string) Source {
	if topic == "" {
		topic = DefaultTopic
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxReplayLine)
	line := 0
	var done error
	return func() (*kgo.Record, error) {
		if done != nil {
			return nil, done
		}
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			rec, err := parseReplayLine(b, topic)
			if err != nil {
				done = fmt.Errorf("synth: replay line %d: %w", line, err)
				return nil, done
			}
			return rec, nil
		}
		switch err := sc.Err(); {
		case errors.Is(err, bufio.ErrTooLong):
			done = fmt.Errorf("synth: replay line %d: longer than %d bytes", line+1, maxReplayLine)
		case err != nil:
			done = fmt.Errorf("synth: replay: read after line %d: %w", line, err)
		default:
			done = io.EOF
		}
		return nil, done
	}
}

// envelope is the explicit form of a replay line.
type envelope struct {
	Key       json.RawMessage   `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers"`
	Partition *int32            `json:"partition"`
}

// ids are the members a key is derived from.
type ids struct {
	LeadID      *string `json:"lead_id"`
	AnonymousID *string `json:"anonymous_id"`
}

func parseReplayLine(b []byte, topic string) (*kgo.Record, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, fmt.Errorf("not a JSON object but %s", ute.Value)
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if top == nil {
		return nil, errors.New("not a JSON object but null")
	}
	rec := &kgo.Record{Topic: topic}
	if _, ok := top["value"]; !ok {
		key, err := keyOf(b)
		if err != nil {
			return nil, err
		}
		rec.Key = []byte(key)
		rec.Value = bytes.Clone(b)
		return rec, nil
	}

	var env envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	switch v := bytes.TrimSpace(env.Value); {
	case bytes.Equal(v, []byte("null")):
	case v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("envelope value: %w", err)
		}
		rec.Value = []byte(s)
	default:
		rec.Value = bytes.Clone(v)
	}
	switch k := bytes.TrimSpace(env.Key); {
	case len(k) == 0:
		if rec.Value == nil || rec.Value[0] != '{' {
			return nil, errors.New(`envelope: no "key", and the value is not an object to take lead_id from`)
		}
		key, err := keyOf(rec.Value)
		if err != nil {
			return nil, fmt.Errorf("envelope: no \"key\", and the value: %w", err)
		}
		rec.Key = []byte(key)
	case bytes.Equal(k, []byte("null")):
	default:
		var s string
		if err := json.Unmarshal(k, &s); err != nil {
			return nil, fmt.Errorf("envelope key: must be a string or null: %w", err)
		}
		if s != "" {
			rec.Key = []byte(s)
		}
	}
	if len(env.Headers) > 0 {
		keys := make([]string, 0, len(env.Headers))
		for k := range env.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		rec.Headers = make([]kgo.RecordHeader, len(keys))
		for i, k := range keys {
			rec.Headers[i] = kgo.RecordHeader{Key: k, Value: []byte(env.Headers[k])}
		}
	}
	if env.Partition != nil {
		if *env.Partition < 0 {
			return nil, fmt.Errorf("envelope partition: %d is negative", *env.Partition)
		}
		rec.Partition = *env.Partition
	}
	return rec, nil
}

// keyOf returns the lead_id, else the anonymous_id, of a touchpoint object.
func keyOf(obj []byte) (string, error) {
	var id ids
	if err := json.Unmarshal(obj, &id); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return "", fmt.Errorf("%s: must be a string, not %s", ute.Field, ute.Value)
		}
		return "", err
	}
	switch {
	case id.LeadID != nil && *id.LeadID != "":
		return *id.LeadID, nil
	case id.AnonymousID != nil && *id.AnonymousID != "":
		return *id.AnonymousID, nil
	}
	return "", errors.New("neither lead_id nor anonymous_id is set (use an envelope with a key to send it anyway)")
}
