// Package mqlout is the contract of the MQL topic: how an MQL event
// (scorer.MQL) becomes a Kafka record, and the JSON Schema that CRM
// consumers can validate it against.
//
// # Records
//
// One record per qualification, on the MQL topic (default leadscore.mql):
//
//   - key: the lead id, so one lead's MQL events stay in order on one
//     partition;
//   - value: the event as JSON (mql.schema.json, embedded as Schema);
//   - headers: content-type "application/json" and leadscore.schema
//     "mql/v1".
//
// The records are written in the scorer's Kafka transaction: a consumer
// with isolation.level=read_committed sees each qualification exactly once.
// mql_id is deterministic (the same lead, sequence and trigger event give
// the same id), so a consumer that reads read_uncommitted, or replays the
// topic, can still de-duplicate on it.
//
// # Compatibility
//
// Fields are only ever added to the v1 schema; a consumer must ignore
// fields it does not know. A breaking change would come with schema mql/v2
// in the header.
package mqlout

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

// Schema is the JSON Schema (draft 2020-12) of the MQL event value.
//
//go:embed mql.schema.json
var Schema []byte

// SchemaID is the value of the leadscore.schema header.
const SchemaID = "mql/v1"

var headers = []kgo.RecordHeader{
	{Key: "content-type", Value: []byte("application/json")},
	{Key: "leadscore.schema", Value: []byte(SchemaID)},
}

// Record encodes m as a record for topic. The record's headers slice is
// shared between records and must not be modified.
func Record(topic string, m *scorer.MQL) (*kgo.Record, error) {
	value, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("mqlout: encode mql %s: %w", m.MQLID, err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(m.LeadID), Value: value, Headers: headers}, nil
}

// Decode parses an MQL record value.
func Decode(value []byte) (*scorer.MQL, error) {
	var m scorer.MQL
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, fmt.Errorf("mqlout: decode: %w", err)
	}
	return &m, nil
}
