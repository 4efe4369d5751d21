package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// rng is the only source of randomness of a model. Each model part draws
// from its own stream (newRNG(seed, "deployer/steps")), so changing one part
// of a model does not reshuffle the others.
type rng struct{ r *rand.Rand }

func newRNG(seed int64, stream string) *rng {
	var salt uint64 = 1469598103934665603 // FNV-1a
	for _, b := range []byte(stream) {
		salt ^= uint64(b)
		salt *= 1099511628211
	}
	return &rng{rand.New(rand.NewPCG(uint64(seed), salt))}
}

func (g *rng) float() float64        { return g.r.Float64() }
func (g *rng) intn(n int) int        { return g.r.IntN(n) }
func (g *rng) chance(p float64) bool { return g.r.Float64() < p }

// between is uniform in [lo, hi].
func (g *rng) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// normal draws from N(mean, sd).
func (g *rng) normal(mean, sd float64) float64 { return mean + sd*g.r.NormFloat64() }

// lognormal draws a positive value with the given median; sigma is the
// spread of its logarithm (0.3: most draws within ×0.55…×1.8 of the median).
// Durations of real operations (downloads, boots, migrations) are skewed
// this way: usually close to typical, sometimes much longer.
func (g *rng) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.r.NormFloat64())
}

// duration is a lognormal duration, at least 100 ms, rounded to the
// millisecond so encoded times stay short.
func (g *rng) duration(median time.Duration, sigma float64) time.Duration {
	d := time.Duration(g.lognormal(float64(median), sigma))
	return max(d, 100*time.Millisecond).Round(time.Millisecond)
}

// exp draws an exponential wait with the given mean: the gap between
// independent arrivals.
func (g *rng) exp(mean time.Duration) time.Duration {
	return time.Duration(g.r.ExpFloat64() * float64(mean)).Round(time.Millisecond)
}

// hex returns n random hex digits.
func (g *rng) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

// pick returns one element of xs.
func pick[T any](g *rng, xs []T) T { return xs[g.r.IntN(len(xs))] }

// weighted returns an index drawn with the given weights.
func (g *rng) weighted(weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	x := g.r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// id is a prefixed random id such as "dep-3f9a0c12b7e4".
func (g *rng) id(prefix string, n int) string { return fmt.Sprintf("%s%s", prefix, g.hex(n)) }

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// round1 rounds to one decimal, as dashboards show percentages.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
