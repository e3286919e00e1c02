package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/leadscore/leadscore/models"
)

// modelUsage is what 'leadscore model -h' prints.
const modelUsage = `Usage:
  leadscore model validate FILE...  check scoring model files: each is reported ok, or its
                                    errors with file, line and field (exit 1 if any has one)
  leadscore model show              print the default scoring model (embedded in the binary)
`

// cmdModel checks model files or prints the default model (or the usage)
// to out.
func cmdModel(args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("model: want 'model validate FILE...' or 'model show'")}
	}
	if isHelp(args[0]) || len(args) > 1 && isHelp(args[1]) {
		_, err := io.WriteString(out, modelUsage)
		return err
	}
	switch args[0] {
	case "show":
		_, err := out.Write(models.DefaultYAML())
		return err
	case "validate":
		if len(args) < 2 {
			return usageError{errors.New("model validate: no file given")}
		}
		failed := 0
		for _, path := range args[1:] {
			m, err := models.Load(path)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				failed++
				continue
			}
			fmt.Fprintf(out, "%s: ok: model %s version %s: %d rules, %d fit rules, half-life %s, mql %g, rearm %g\n",
				path, m.Name, m.Version, len(m.Rules), len(m.Fit), models.FormatDuration(m.HalfLife), m.Thresholds.MQL, m.Thresholds.Rearm)
		}
		if failed > 0 {
			return fmt.Errorf("model validate: %d of %d files have errors", failed, len(args)-1)
		}
		return nil
	}
	return usageError{fmt.Errorf("model: unknown subcommand %q (want validate or show)", args[0])}
}
