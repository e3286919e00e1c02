package main

import (
	"io"
	"strings"
	"testing"
)

// TestModelHelp: 'model -h' and 'model validate -h' print the usage
// instead of failing on an unknown subcommand or a file named -h.
func TestModelHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"validate", "-h"}, {"show", "--help"}} {
		var out strings.Builder
		if err := cmdModel(args, &out); err != nil || out.String() != modelUsage {
			t.Errorf("model %s: %v, printed %q", strings.Join(args, " "), err, out.String())
		}
	}
	if err := cmdModel([]string{"validat"}, io.Discard); err == nil || !strings.Contains(err.Error(), "want validate or show") {
		t.Errorf("model validat: %v", err)
	}
}

// TestBuildVersion: the linker's version comes first; without it, what
// the toolchain recorded (a test binary has no VCS stamp: "devel").
func TestBuildVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = ""
	if v := buildVersion(); !strings.HasPrefix(v, "devel") || !strings.Contains(v, "go1.") {
		t.Errorf("buildVersion() = %q, want devel ... go1.N", v)
	}
	version = "v1.2.3"
	if v := buildVersion(); !strings.HasPrefix(v, "v1.2.3 go1.") {
		t.Errorf("buildVersion() = %q, want v1.2.3 go1.N", v)
	}
}
