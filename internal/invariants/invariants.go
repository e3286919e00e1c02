// Package invariants switches on expensive self-checks. They are compiled
// in with the build tag "invariants" (`make test` sets it) and compiled
// out otherwise, so production binaries do not pay for them.
//
//	go test -tags invariants ./...
package invariants
