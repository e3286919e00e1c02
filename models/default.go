package models

import (
	_ "embed"
	"slices"
	"sync"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultFile is the name the embedded default model is parsed under, and
// the name errors about it carry.
const DefaultFile = "default.yaml"

var defaultModel = sync.OnceValue(func() *Model {
	m, err := Parse(DefaultFile, defaultYAML)
	if err != nil {
		// Cannot happen in a released binary: TestDefault parses the same
		// bytes.
		panic(err)
	}
	return m
})

// Default returns the default model that ships embedded in the binary
// (default.yaml in this package, documented line by line). It is parsed
// once; every call returns the same *Model, which callers must not modify.
func Default() *Model { return defaultModel() }

// DefaultYAML returns a copy of the default model's source, for users who
// want to start their own model from it.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// PropertyKeys returns the sorted distinct property keys that m's rules
// match on. A decoder need keep only these properties of a touchpoint.
func (m *Model) PropertyKeys() []string {
	var keys []string
	for i := range m.Rules {
		for _, pm := range m.Rules[i].Properties {
			keys = append(keys, pm.Key)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// TraitKeys returns the sorted distinct traits that m's fit rules read.
func (m *Model) TraitKeys() []string {
	var keys []string
	for i := range m.Fit {
		keys = append(keys, m.Fit[i].Trait)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
