package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the want sections of testdata/decode/*.txt")

// tpView is a Touchpoint, or a decode error, as written in golden files.
type tpView struct {
	Error         string        `json:"error,omitempty"`
	Format        string        `json:"format"`
	EventID       string        `json:"event_id,omitempty"`
	LeadID        string        `json:"lead_id,omitempty"`
	AnonymousID   string        `json:"anonymous_id,omitempty"`
	AccountID     string        `json:"account_id,omitempty"`
	Type          string        `json:"type,omitempty"`
	Channel       string        `json:"channel,omitempty"`
	Campaign      string        `json:"campaign,omitempty"`
	OccurredAt    int64         `json:"occurred_at,omitempty"`
	Props         []scorer.Attr `json:"props,omitempty"`
	Traits        []scorer.Attr `json:"traits,omitempty"`
	RawProperties string        `json:"raw_properties,omitempty"`
	RawTraits     string        `json:"raw_traits,omitempty"`
}

func viewOf(tp *scorer.Touchpoint, f Format, err error) tpView {
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			return tpView{Error: "not a *DecodeError: " + err.Error()}
		}
		return tpView{Error: string(de.Reason) + " " + de.Field, Format: f.String()}
	}
	return tpView{
		Format: f.String(), EventID: tp.EventID, LeadID: tp.LeadID, AnonymousID: tp.AnonymousID,
		AccountID: tp.AccountID, Type: tp.Type, Channel: tp.Channel, Campaign: tp.Campaign,
		OccurredAt: tp.OccurredAt, Props: tp.Props, Traits: tp.Traits,
		RawProperties: string(tp.RawProperties), RawTraits: string(tp.RawTraits),
	}
}

// goldenCase is one testdata/decode file:
//
//	format <name>          (optional, default auto)
//	key <key>              (optional; "key" alone is an empty key)
//	header <name> <value>  (repeatable)
//	property_keys a,b      (optional)
//	---- value
//	<record value, verbatim up to the last newline>
//	---- want
//	<expected tpView as JSON>
type goldenCase struct {
	cfg     DecoderConfig
	key     []byte
	headers []kgo.RecordHeader
	value   []byte
	want    []byte
	head    []byte // everything up to and including "---- want\n"
}

func parseGolden(t *testing.T, data []byte) goldenCase {
	t.Helper()
	var c goldenCase
	vi := bytes.Index(data, []byte("---- value\n"))
	wi := bytes.Index(data, []byte("\n---- want\n"))
	if vi < 0 || wi < vi {
		t.Fatal("want '---- value' then '---- want' sections")
	}
	c.value = data[vi+len("---- value\n") : wi]
	c.head = data[:wi+len("\n---- want\n")]
	c.want = data[wi+len("\n---- want\n"):]
	for _, line := range strings.Split(string(data[:vi]), "\n") {
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "", "#":
		case "format":
			f, err := ParseFormat(arg)
			if err != nil {
				t.Fatal(err)
			}
			c.cfg.Format = f
		case "key":
			c.key = []byte(arg)
		case "header":
			k, v, _ := strings.Cut(arg, " ")
			c.headers = append(c.headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		case "property_keys":
			c.cfg.PropertyKeys = strings.Split(arg, ",")
		default:
			t.Fatalf("unknown directive %q", line)
		}
	}
	return c
}

func TestDecodeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/decode/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c := parseGolden(t, data)
			d, err := NewDecoder(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var tp scorer.Touchpoint
			derr := d.Decode(c.key, c.value, c.headers, &tp)
			got, err := json.MarshalIndent(viewOf(&tp, d.LastFormat(), derr), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if derr == nil {
				checkInvariants(t, &tp)
			}
			if *rewrite {
				if err := os.WriteFile(file, append(c.head[:len(c.head):len(c.head)], got...), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}
