package ingest

import "testing"

func TestCEType(t *testing.T) {
	for in, want := range map[string]string{
		"com.acme.lead.page_view": "page_view",
		"page_view":               "page_view",
		"com.acme.":               "",
		".x":                      "x",
	} {
		if got := ceType(in); got != want {
			t.Errorf("ceType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsJSONMedia(t *testing.T) {
	for in, want := range map[string]bool{
		"application/json":                  true,
		"Application/JSON; charset=utf-8":   true,
		" application/json ":                true,
		"text/json":                         true,
		"application/vnd.acme.event+json":   true,
		"application/cloudevents+json":      true,
		"application/xml":                   false,
		"application/json-seq":              false,
		"+json":                             false,
		"application/octet-stream":          false,
		"application/x-www-form-urlencoded": false,
	} {
		if got := isJSONMedia(in); got != want {
			t.Errorf("isJSONMedia(%q) = %v, want %v", in, got, want)
		}
	}
}
