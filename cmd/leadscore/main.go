// Command leadscore is the streaming behavioural lead-scoring pipeline.
//
//	leadscore dev                    embedded broker, synthetic traffic, scorer, archive, metrics
//	leadscore run --brokers HOST:PORT score touchpoints from a Kafka cluster
//	leadscore gen --brokers HOST:PORT produce synthetic touchpoints or replay a JSONL file
//	leadscore model validate FILE     check a scoring model file
//	leadscore model show              print the default model
//
// Every flag can also be set by an environment variable (LEADSCORE_ and the
// flag name in capitals with '-' as '_', e.g. LEADSCORE_BROKERS) or by a
// YAML config file given with --config whose keys are the flag names.
// Command-line flags win over the environment, which wins over the file.
//
// The first SIGINT or SIGTERM stops run and dev gracefully: the open
// transaction commits, archive files close, the groups are left, within
// --shutdown-timeout (+5 s for the rest) or the process exits with
// status 1. A second signal exits at once with 128 + its number (the same
// signal again within 0.5 s is the same request). A mistake in the command
// line, the configuration or the model exits 2.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
)

const usage = `leadscore: streaming behavioural lead scoring on Kafka

Usage:
  leadscore dev   [flags]          embedded Kafka-protocol broker, synthetic traffic, scorer, archive, metrics
  leadscore run   [flags]          score touchpoints from a Kafka cluster (--brokers)
  leadscore gen   [flags]          produce synthetic touchpoints, or replay a JSONL file (--file)
  leadscore model validate FILE... check scoring model files
  leadscore model show             print the default scoring model
  leadscore version

Run 'leadscore COMMAND -h' for the flags of a command.
`

// version is the release, set by the linker for release builds
// (-ldflags "-X main.version=v1.2.3"); without it buildVersion says what
// the Go toolchain recorded.
var version = ""

// buildVersion returns version, or the module's version when the binary
// was built with 'go install ...@version', or "devel" with the VCS
// revision and time the toolchain stamped into a build from a checkout
// ("+dirty" for uncommitted changes), and the Go version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if version != "" {
		if ok {
			return version + " " + bi.GoVersion
		}
		return version
	}
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
		var rev, when, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if rev != "" {
			v += " " + rev[:min(12, len(rev))] + dirty
			if when != "" {
				v += " " + when
			}
		}
	}
	return v + " " + bi.GoVersion
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	st := newStopper()
	defer st.close()
	ctx := st.ctx

	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, st, args[1:])
	case "dev":
		err = cmdDev(ctx, st, args[1:])
	case "gen":
		err = cmdGen(ctx, args[1:])
	case "model":
		err = cmdModel(args[1:])
	case "version", "--version", "-version":
		fmt.Println("leadscore", buildVersion())
	case "help", "-h", "--h", "--help", "-help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "leadscore: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "leadscore:", err)
		return exitUsage
	case (args[0] == "run" || args[0] == "dev") && st.stopping() && errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintln(os.Stderr, "leadscore: the shutdown did not finish within --shutdown-timeout:", err)
		return exitFailed
	default:
		fmt.Fprintln(os.Stderr, "leadscore:", err)
		return exitFailed
	}
}

// usageError is a mistake in the command line or configuration: exit 2.
type usageError struct{ error }
