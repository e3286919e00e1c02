package scorer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulps returns how many float64 steps apart a and b (both > 0) are.
func ulps(a, b float64) int64 {
	d := int64(math.Float64bits(a)) - int64(math.Float64bits(b))
	if d < 0 {
		d = -d
	}
	return d
}

// TestExp2 checks exp2 against math.Exp2: within 2 ulps on the decay
// factors' range (random arguments at every scale, and the points where
// the table and the exponent change), exactly where it defers to it.
func TestExp2(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var xs []float64
	for range 1_000_000 {
		// Every scale: from a millisecond of a year's half-life to 1000.
		xs = append(xs, -math.Exp(rng.Float64()*math.Log(1000/1e-11))*1e-11)
	}
	for n := -64 * 1000; n <= 0; n++ {
		x := float64(n) / 64
		xs = append(xs, x, math.Nextafter(x, 0), math.Nextafter(x, -2000), x+1.0/128, x-1.0/128)
	}
	xs = append(xs, 0, math.Copysign(0, -1), -5e-324, -1e-300, -1000, -999.9999999)
	worst := int64(0)
	for _, x := range xs {
		if x < -1000 {
			continue
		}
		got, want := exp2(x), math.Exp2(x)
		if d := ulps(got, want); d > worst {
			worst = d
			if d > 2 {
				t.Fatalf("exp2(%v) = %v, math.Exp2 %v: %d ulps apart", x, got, want, d)
			}
		}
	}
	t.Logf("worst: %d ulps over %d arguments", worst, len(xs))
	for _, x := range []float64{-1000.5, -1074, -1075, -5000, math.Inf(-1), 1, 0.5, math.Inf(1), math.NaN()} {
		got, want := exp2(x), math.Exp2(x)
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("exp2(%v) = %v, want math.Exp2's %v", x, got, want)
		}
	}
	if exp2(0) != 1 || exp2(-1) != 0.5 || exp2(-10) != 1.0/1024 {
		t.Errorf("exp2 of integers: %v %v %v, want exact powers of two", exp2(0), exp2(-1), exp2(-10))
	}
}

func BenchmarkExp2(b *testing.B) {
	xs := make([]float64, 1024)
	for i := range xs {
		xs[i] = -float64(i) * 0.37
	}
	var s float64
	b.Run("exp2", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s += exp2(xs[i&1023])
		}
	})
	b.Run("math.Exp2", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s += math.Exp2(xs[i&1023])
		}
	})
	_ = s
}
