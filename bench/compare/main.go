// Command compare measures a change to the hot paths the way this
// project's figures are taken: the Go benchmarks of the working tree and
// of a base revision, built once each, run in alternation (base, new,
// base, new, ...) so that both see the same drift of a shared or virtual
// machine, then compared by benchstat (medians, confidence intervals and
// the p-value of the difference).
//
//	go run ./bench/compare -base HEAD -pkg ./ingest -bench 'DecodeApply$' -rounds 8
//	make bench-compare BASE=main PKG=./scorer BENCH='ApplyPrefetch$'
//
// The base is checked out in a temporary git worktree, removed at the
// end; the new side is the working tree as it is, uncommitted changes
// included. Benchmarks run on one CPU (-cpu 1), as `make bench` runs
// them. The table shows time and allocations per operation (-filter ""
// shows every unit the benchmarks report, events/s included). Each round's
// raw output is kept under -out (default: a new temporary directory,
// printed) as base.txt and new.txt, for benchstat's other options.
//
// Each side is built as `make bench` builds it: with the profile-guided
// optimisation profile that side ships (cmd/leadscore/default.pgo in its
// tree, the profile the leadscore binary is built with), or without one
// where it has none; -pgo off builds both without.
//
// benchstat is pinned as a tool in go.mod (go tool benchstat).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	var c config
	flag.StringVar(&c.base, "base", "HEAD", "git revision to compare the working tree with")
	flag.StringVar(&c.pkg, "pkg", "./ingest", "package whose benchmarks run")
	flag.StringVar(&c.bench, "bench", ".", "regular expression of the benchmarks to run (go test -bench)")
	flag.IntVar(&c.rounds, "rounds", 6, "runs of each side, alternated")
	flag.StringVar(&c.benchtime, "benchtime", "1s", "go test -benchtime of each run")
	flag.StringVar(&c.out, "out", "", "directory for base.txt and new.txt (default: a new temporary directory)")
	flag.StringVar(&c.filter, "filter", ".unit:(sec/op OR allocs/op)", "benchstat -filter: which results to show")
	flag.StringVar(&c.pgo, "pgo", "auto", "auto: build each side with its own "+pgoProfile+", if it has one; off: without")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `usage: go run ./bench/compare [flags]

Builds the Go benchmarks of -pkg at -base and in the working tree, runs
them in alternation for -rounds rounds on one CPU, and compares them with
benchstat. Run from inside the repository.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	// Interrupted, the runs stop and the base worktree is still removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type config struct {
	base, pkg, bench, benchtime, out, filter, pgo string
	rounds                                        int
}

// pgoProfile is the profile-guided optimisation profile of the leadscore
// binary, relative to the module root.
const pgoProfile = "cmd/leadscore/default.pgo"

// pgoFlag returns the go test -pgo flag that builds the tree at src as
// the leadscore binary of that tree is built.
func (c *config) pgoFlag(src string) (string, error) {
	if c.pgo == "off" {
		return "-pgo=off", nil
	}
	prof := filepath.Join(src, pgoProfile)
	if _, err := os.Stat(prof); errors.Is(err, os.ErrNotExist) {
		return "-pgo=off", nil
	} else if err != nil {
		return "", err
	}
	return "-pgo=" + prof, nil
}

func (c *config) run(ctx context.Context) error {
	if c.rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", c.rounds)
	}
	if c.pgo != "auto" && c.pgo != "off" {
		return fmt.Errorf("-pgo %q: want auto or off", c.pgo)
	}
	if !strings.HasPrefix(c.pkg, "./") {
		return fmt.Errorf("-pkg %q: want a package path relative to the module root, like ./ingest", c.pkg)
	}
	root, err := output(ctx, "", "git", "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	rev, err := output(ctx, root, "git", "rev-parse", "--short", c.base+"^{commit}")
	if err != nil {
		return fmt.Errorf("-base %q: %w", c.base, err)
	}
	if c.out == "" {
		if c.out, err = os.MkdirTemp("", "leadscore-compare-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	// Absolute: the builds and the runs have other working directories.
	if c.out, err = filepath.Abs(c.out); err != nil {
		return err
	}
	tree := filepath.Join(c.out, "base-tree")
	if _, err := os.Stat(tree); err == nil { // left by an earlier run in the same -out
		if err := os.RemoveAll(tree); err != nil {
			return err
		}
		if _, err := output(ctx, root, "git", "worktree", "prune"); err != nil {
			return err
		}
	}
	if _, err := output(ctx, root, "git", "worktree", "add", "--detach", "--force", tree, rev); err != nil {
		return err
	}
	defer func() {
		// Not with ctx: an interrupted run cleans up too.
		if _, err := output(context.Background(), root, "git", "worktree", "remove", "--force", tree); err != nil {
			fmt.Fprintln(os.Stderr, "compare: removing the base worktree:", err)
		}
	}()

	// Both binaries run in the package directory of the working tree, so
	// that testdata is the same for both.
	dir := filepath.Join(root, c.pkg)
	sides := []struct {
		name, src, at string // src: the tree built; at: how errors name it
		bin, results  string
	}{
		{"base", tree, "base " + rev, filepath.Join(c.out, "base.test"), filepath.Join(c.out, "base.txt")},
		{"new", root, "the working tree", filepath.Join(c.out, "new.test"), filepath.Join(c.out, "new.txt")},
	}
	defer func() { // tens of MB each; the results stay
		for _, s := range sides {
			os.Remove(s.bin)
		}
	}()
	fmt.Fprintf(os.Stderr, "building %s at %s and in the working tree\n", c.pkg, rev)
	for _, s := range sides {
		pgo, err := c.pgoFlag(s.src)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", s.name, pgo)
		if _, err := output(ctx, s.src, "go", "test", pgo, "-c", "-o", s.bin, c.pkg); err != nil {
			return fmt.Errorf("building %s: %w", s.at, err)
		}
		if _, err := os.Stat(s.bin); err != nil { // go test -c writes nothing for a package without tests
			return fmt.Errorf("%s: %s has no test files at %s", s.name, c.pkg, s.at)
		}
		// Each run's output is appended as it ends: an interrupted or
		// failed comparison keeps the rounds already run.
		if err := os.WriteFile(s.results, nil, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "raw results in %s\n", c.out)
	for r := 1; r <= c.rounds; r++ {
		for _, s := range sides {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r, c.rounds, s.name)
			out, err := output(ctx, dir, s.bin, "-test.run", "^$", "-test.bench", c.bench,
				"-test.benchmem", "-test.cpu", "1", "-test.benchtime", c.benchtime)
			if ctx.Err() != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, r, ctx.Err())
			}
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, r, err)
			}
			if !strings.Contains(out, "\nBenchmark") && !strings.HasPrefix(out, "Benchmark") {
				return fmt.Errorf("%s: no benchmark matches -bench %q in %s", s.name, c.bench, c.pkg)
			}
			if err := appendFile(s.results, out+"\n"); err != nil {
				return err
			}
		}
	}
	args := []string{"tool", "benchstat"}
	if c.filter != "" {
		args = append(args, "-filter", c.filter)
	}
	for _, s := range sides {
		args = append(args, s.name+"="+s.results)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
	return cmd.Run()
}

func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// output runs name with args in dir and returns its trimmed standard
// output; on failure the error carries its standard error, or the end of
// its standard output when that is empty (a failing benchmark reports
// there).
func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			out := strings.TrimSpace(stdout.String())
			msg = out[max(len(out)-2000, 0):]
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
		}
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}
