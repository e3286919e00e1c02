package mqlout

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/leadscore/leadscore/scorer"
)

type schemaNode struct {
	Type       string                `json:"type"`
	Required   []string              `json:"required"`
	Properties map[string]schemaNode `json:"properties"`
	Items      *schemaNode           `json:"items"`
	Pattern    string                `json:"pattern"`
}

func sample() *scorer.MQL {
	fitMin := 10.0
	return &scorer.MQL{
		MQLID: "3f2a1b4c-5d6e-8f70-8123-456789abcdef", LeadID: "lead-1", AnonymousID: "anon-1", AccountID: "acme.com",
		Sequence: 2, QualifiedAt: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), TriggerEventID: "ev-9",
		Score: 104.5, Fit: 25,
		Thresholds:   scorer.MQLThresholds{MQL: 100, FitMin: &fitMin, Rearm: 50, CooldownSeconds: 86400},
		Model:        scorer.ModelRef{Name: "b2b-default", Version: "1.0.0"},
		Contributors: []scorer.Contributor{{Type: "demo_request", Channel: "web", Campaign: "q4", Points: 50}},
		EmittedAt:    time.Date(2026, 11, 24, 10, 0, 1, 0, time.UTC),
	}
}

// TestSchemaCoversEvent checks that every field the encoder writes is in the
// schema with the right JSON type, that every required field is written,
// and that the schema's patterns accept the sample: the schema and the
// struct cannot drift apart unnoticed.
func TestSchemaCoversEvent(t *testing.T) {
	var root schemaNode
	if err := json.Unmarshal(Schema, &root); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	r, err := Record("leadscore.mql", sample())
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Key) != "lead-1" {
		t.Errorf("key = %q, want lead id", r.Key)
	}
	var doc any
	if err := json.Unmarshal(r.Value, &doc); err != nil {
		t.Fatal(err)
	}
	check(t, "$", root, doc)
}

func check(t *testing.T, path string, s schemaNode, v any) {
	t.Helper()
	switch s.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: want object, got %T", path, v)
		}
		for _, req := range s.Required {
			if _, ok := obj[req]; !ok {
				t.Errorf("%s: required field %q not written", path, req)
			}
		}
		for k, fv := range obj {
			sub, ok := s.Properties[k]
			if !ok {
				t.Errorf("%s: field %q written but not in the schema", path, k)
				continue
			}
			check(t, path+"."+k, sub, fv)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			t.Fatalf("%s: want array, got %T", path, v)
		}
		for i, e := range arr {
			check(t, path+"[]", *s.Items, e)
			_ = i
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			t.Errorf("%s: want string, got %T", path, v)
			return
		}
		if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			t.Errorf("%s: %q does not match %s", path, str, s.Pattern)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			t.Errorf("%s: want number, got %T", path, v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			t.Errorf("%s: want integer, got %v", path, v)
		}
	default:
		t.Errorf("%s: schema type %q not handled by this test", path, s.Type)
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	r, err := Record("t", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	if out.MQLID != in.MQLID || out.Sequence != in.Sequence || !out.QualifiedAt.Equal(in.QualifiedAt) ||
		*out.Thresholds.FitMin != *in.Thresholds.FitMin || !slices.Equal(out.Contributors, in.Contributors) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Error("Decode accepted invalid JSON")
	}
}
