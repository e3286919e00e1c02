package scorer

import "math"

// exp2 returns 2^x, within a few ulps of math.Exp2, for the decay factors
// of every update: x = -dt/H <= 0. It costs a quarter of math.Exp2's
// instructions (a table of 2^(j/64) and a short polynomial instead of the
// general reduction and Ldexp), which matters at millions of updates per
// second. Arguments below -1000 (a thousand half-lives: the factor is
// below 1e-301), NaN and positive ones go to math.Exp2.
//
// x = n/64 + r with n an integer and |r| <= 1/128, so
// 2^x = 2^(n>>6) * 2^((n&63)/64) * 2^r: an exponent put in the bits, a
// table entry, and 2^r = e^(r ln 2) by its Taylor series to the fifth
// power (|r ln 2| <= 0.0055: the first term left out is below 4e-17, a
// third of an ulp), added as t + t*(2^r - 1) so that the small term's
// rounding hardly counts.
func exp2(x float64) float64 {
	if !(x >= -1000 && x <= 0) {
		return math.Exp2(x)
	}
	// Round x*64 to an integer in the low bits of a float's mantissa.
	const round = 0x1.8p52
	kd := x*64 + round
	n := int64(math.Float64bits(kd)) << 32 >> 32 // sign-extended low 32 bits: round(x*64)
	kd -= round
	r := x - kd/64
	u := r * math.Ln2
	q := u * (1 + u*(1.0/2+u*(1.0/6+u*(1.0/24+u*(1.0/120))))) // 2^r - 1
	t := exp2Tab[n&63]
	scale := math.Float64frombits(uint64(n>>6+1023) << 52)
	return (t + t*q) * scale
}

// exp2Tab holds 2^(j/64) for j in [0, 64).
var exp2Tab = func() (t [64]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 64)
	}
	return t
}()
