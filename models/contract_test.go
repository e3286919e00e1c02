package models

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestContractCopy: SCORING.md at the repository's root is the product's
// behavioural contract, kept in the repository for its users. Where the
// product team's copy is there too (../shared beside the checkout, on the
// developers' machines), the two must be the same text.
func TestContractCopy(t *testing.T) {
	ours, err := os.ReadFile(filepath.Join("..", "SCORING.md"))
	if err != nil {
		t.Fatalf("the repository's SCORING.md: %v", err)
	}
	shared, err := os.ReadFile(filepath.Join("..", "..", "shared", "SCORING.md"))
	if err != nil {
		t.Skipf("no product team's copy to compare with: %v", err)
	}
	if !bytes.Equal(ours, shared) {
		t.Error("SCORING.md differs from ../shared/SCORING.md: bring the repository's copy, and what it changes, up to date")
	}
}
