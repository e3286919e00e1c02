package main

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Config configures one harness run. Only Brokers is required.
type Config struct {
	// Brokers are the seed brokers (host:port). Required.
	Brokers []string
	// Events is the number of input records. Default 1000000.
	Events int
	// Leads is the number of distinct synthetic leads. Default 100000.
	Leads int
	// Kills is the least number of kill -9 + restart cycles of the chaos
	// run (the instance loss comes on top). Default 20; negative means none.
	Kills int
	// Partitions of the input topics. Default 6.
	Partitions int
	// Seed makes the input and the chaos schedule reproducible. Default 1.
	Seed int64
	// Rate is the records per second produced to the chaos input while the
	// chaos run consumes it; it spreads the chaos over the stream. Default
	// 2500.
	Rate float64
	// Step is the mean simulated event time between input records.
	// Default 1s.
	Step time.Duration
	// NoInstanceLoss skips the instance loss (second instance joins, one
	// of the two stays dead for two session timeouts). Default false.
	NoInstanceLoss bool
	// BrokerRestart restarts the broker once during the chaos run with
	// KafkaScript down, then up. Default false.
	BrokerRestart bool
	// KafkaScript is deploy/kafka.sh, run with KAFKA_PORT set to the first
	// broker's port. Default: deploy/kafka.sh of the module root.
	KafkaScript string
	// Binary is the leadscore binary. Default: built from ./cmd/leadscore
	// of the module root into Dir.
	Binary string
	// Dir holds the archives, the process logs and the built binary.
	// Default: a new temporary directory, removed afterwards unless the
	// run failed.
	Dir string
	// SessionTimeout is the instances' --session-timeout. Default 6s.
	SessionTimeout time.Duration
	// RollRecords is the instances' --archive-roll-records: small enough
	// that files close during the run. Default Events/(4*Partitions), at
	// least 1000.
	RollRecords int
	// Timeout bounds each phase that waits for the pipeline (the reference
	// run, the chaos run, the drains). Default 30m.
	Timeout time.Duration
	// KeepTopics leaves the run's topics on the broker. Default false:
	// they are deleted at the end.
	KeepTopics bool
	// Log receives progress lines. Default io.Discard.
	Log io.Writer
}

// Defaults of Config.
const (
	DefaultEvents         = 1_000_000
	DefaultLeads          = 100_000
	DefaultKills          = 20
	DefaultPartitions     = 6
	DefaultRate           = 2500
	DefaultStep           = time.Second
	DefaultSessionTimeout = 6 * time.Second
	DefaultTimeout        = 30 * time.Minute
)

// Validate reports the first invalid field of c by name. Zero values are
// valid (they select the defaults) except for Brokers.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("chaos: Config.Brokers: required")
	case c.Events < 0:
		return fmt.Errorf("chaos: Config.Events: %d is negative", c.Events)
	case c.Leads < 0:
		return fmt.Errorf("chaos: Config.Leads: %d is negative", c.Leads)
	case c.Partitions < 0 || c.Partitions > 1000:
		return fmt.Errorf("chaos: Config.Partitions: %d is not in 0..1000", c.Partitions)
	case c.Rate < 0:
		return fmt.Errorf("chaos: Config.Rate: %v is negative", c.Rate)
	case c.Step < 0:
		return fmt.Errorf("chaos: Config.Step: %v is negative", c.Step)
	case c.SessionTimeout < 0 || (c.SessionTimeout > 0 && c.SessionTimeout < time.Second):
		return fmt.Errorf("chaos: Config.SessionTimeout: %v is under 1s", c.SessionTimeout)
	case c.RollRecords < 0:
		return fmt.Errorf("chaos: Config.RollRecords: %d is negative", c.RollRecords)
	case c.Timeout < 0:
		return fmt.Errorf("chaos: Config.Timeout: %v is negative", c.Timeout)
	}
	for i, b := range c.Brokers {
		if b == "" {
			return fmt.Errorf("chaos: Config.Brokers[%d]: empty", i)
		}
	}
	return nil
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.Leads == 0 {
		c.Leads = DefaultLeads
	}
	if c.Kills == 0 {
		c.Kills = DefaultKills
	}
	c.Kills = max(c.Kills, 0)
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Step == 0 {
		c.Step = DefaultStep
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.RollRecords == 0 {
		c.RollRecords = max(c.Events/(4*c.Partitions), 1000)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}
