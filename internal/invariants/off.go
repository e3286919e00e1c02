//go:build !invariants

package invariants

// Enabled reports whether the invariant checks are compiled in.
const Enabled = false
