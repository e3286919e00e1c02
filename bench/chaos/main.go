package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses the flags, runs the harness and prints the summary; it
// returns the exit code: 0 exactly once held, 1 a difference or an error,
// 2 bad usage.
func run(args []string) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var cfg Config
	brokers := fs.String("brokers", "127.0.0.1:19092", "comma-separated Kafka bootstrap host:port list")
	fs.IntVar(&cfg.Events, "events", DefaultEvents, "input records")
	fs.IntVar(&cfg.Leads, "leads", DefaultLeads, "distinct synthetic leads")
	fs.IntVar(&cfg.Kills, "kills", DefaultKills, "kill -9 and restart cycles of the chaos run, at least (-1: none)")
	fs.IntVar(&cfg.Partitions, "partitions", DefaultPartitions, "partitions of the input topics")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the input stream and of the chaos schedule")
	fs.Float64Var(&cfg.Rate, "rate", DefaultRate, "records per second produced to the chaos input while the chaos run consumes it")
	fs.DurationVar(&cfg.Step, "step", DefaultStep, "mean simulated event time between records")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", DefaultSessionTimeout, "the instances' group session timeout")
	noLoss := fs.Bool("no-instance-loss", false, "skip the instance loss")
	fs.BoolVar(&cfg.BrokerRestart, "broker-restart", true, "restart the broker once with deploy/kafka.sh (only for its local broker)")
	fs.StringVar(&cfg.KafkaScript, "kafka-script", "", "broker script (default: deploy/kafka.sh of the module)")
	fs.StringVar(&cfg.Binary, "bin", "", "leadscore binary (default: built from ./cmd/leadscore)")
	fs.StringVar(&cfg.Dir, "dir", "", "work directory: archives and process logs (default: a temporary one, removed when all is well)")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "bound on each wait for the pipeline")
	fs.BoolVar(&cfg.KeepTopics, "keep-topics", false, "leave the run's topics and groups on the broker")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./bench/chaos [flags]\n\nChecks leadscore's exactly-once output under kill -9, instance loss and a broker restart.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "chaos: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	cfg.Brokers = strings.Split(*brokers, ",")
	cfg.NoInstanceLoss = *noLoss
	cfg.Log = os.Stderr
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := Run(ctx, cfg)
	if rep != nil {
		fmt.Println()
		fmt.Printf("command: go run ./bench/chaos %s\n", strings.Join(args, " "))
		fmt.Printf("machine: %s\n", rep.Machine)
		fmt.Printf("date: %s\n\n", rep.Start.UTC().Format("2006-01-02 15:04 UTC"))
		rep.WriteTable(os.Stdout)
		if rep.Dir != "" {
			fmt.Printf("work directory (archives, process logs): %s\n", rep.Dir)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	if len(rep.Failures()) > 0 {
		return 1
	}
	return 0
}
