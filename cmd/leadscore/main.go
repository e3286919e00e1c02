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
// YAML config file given with --config (for run, also LEADSCORE_CONFIG)
// whose keys are the flag names.
// Command-line flags win over the environment, which wins over the file.
// An unknown key of the file is an error; an unknown LEADSCORE_ variable
// gets a warning.
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

// buildVersion returns version, else the main module's version as the
// toolchain stamped it: the release tag of 'go install ...@v1.2.3', or for
// a build from a checkout a pseudo-version naming the commit (with
// "+dirty" for uncommitted changes); "devel" when there is none (a build
// with -buildvcs=false, a test binary). The Go version follows.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	v := version
	if v == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	if ok {
		v += " " + bi.GoVersion
	}
	return v
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	if isHelp(args[0]) {
		fmt.Print(usage)
		return exitOK
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
		err = cmdModel(args[1:], os.Stdout)
	case "version", "--version", "-version":
		fmt.Println("leadscore", buildVersion())
	default:
		fmt.Fprintf(os.Stderr, "leadscore: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "leadscore:", withSource(err.Error()))
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

// isHelp reports whether arg asks for help, as the flag package reads
// it (or as a word: "leadscore help").
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--h", "-help", "--help", "help":
		return true
	}
	return false
}
