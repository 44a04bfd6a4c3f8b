package campaigns

import "math"

// Sample summarises per-customer revenue of a group.
type Sample struct {
	N    int
	Mean float64 // cents
	Var  float64 // sample variance (n-1), cents²
}

// SampleOf summarises values (cents).
func SampleOf(values []int64) Sample {
	s := Sample{N: len(values)}
	if s.N == 0 {
		return s
	}
	var sum float64
	for _, v := range values {
		sum += float64(v)
	}
	s.Mean = sum / float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, v := range values {
			d := float64(v) - s.Mean
			ss += d * d
		}
		s.Var = ss / float64(s.N-1)
	}
	return s
}

// t975 are Student's t 97.5% quantiles for 1..30 degrees of freedom.
var t975 = []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
	2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// tQuantile975 is Student's t 97.5% quantile for df degrees of freedom
// (Welch's df is fractional): the table, interpolated, up to 30; a
// Cornish–Fisher expansion beyond, within 0.05% there.
func tQuantile975(df float64) float64 {
	if df <= 1 {
		return t975[0]
	}
	if df < 30 {
		i := int(df)
		f := df - float64(i)
		return t975[i-1] + f*(t975[i]-t975[i-1])
	}
	z := 1.959964
	return z + (z*z*z+z)/(4*df) + (5*math.Pow(z, 5)+16*z*z*z+3*z)/(96*df*df) +
		(3*math.Pow(z, 7)+19*math.Pow(z, 5)+17*z*z*z-15*z)/(384*df*df*df)
}

// Interval is a 95% confidence interval.
type Interval struct{ Low, High float64 }

// MinIntervalGroup is the fewest customers in each of the treated and the
// holdout group for which incremental ROI carries a 95% interval. Below it
// the sample variances are too unsteady for Welch's interval to mean what
// it says (with two or three customers a group that happened to spend
// alike looks certain).
const MinIntervalGroup = 5

// WelchDiff is the difference of means treated − holdout with a 95%
// interval by Welch's t (unequal variances). ok is false when either group
// has fewer than two members. ci is nil when neither group varies: the
// standard error is then zero, and a zero-width interval would claim a
// certainty the data cannot give.
func WelchDiff(t, h Sample) (diff float64, ci *Interval, ok bool) {
	if t.N < 2 || h.N < 2 {
		return 0, nil, false
	}
	diff = t.Mean - h.Mean
	vt, vh := t.Var/float64(t.N), h.Var/float64(h.N)
	se := math.Sqrt(vt + vh)
	if se == 0 {
		return diff, nil, true
	}
	df := (vt + vh) * (vt + vh) / (vt*vt/float64(t.N-1) + vh*vh/float64(h.N-1))
	m := tQuantile975(df) * se
	return diff, &Interval{diff - m, diff + m}, true
}

// IncrementalROI is ((mean treated − mean holdout) × treated − cost) /
// cost, with the interval carried through from the difference of means:
// nil when WelchDiff gives none or either group has fewer than
// MinIntervalGroup customers.
func IncrementalROI(t, h Sample, costCents int64) (roi float64, ci *Interval, ok bool) {
	diff, d, ok := WelchDiff(t, h)
	if !ok || costCents <= 0 {
		return 0, nil, false
	}
	c := float64(costCents)
	n := float64(t.N)
	roi = (diff*n - c) / c
	if d == nil || t.N < MinIntervalGroup || h.N < MinIntervalGroup {
		return roi, nil, true
	}
	return roi, &Interval{(d.Low*n - c) / c, (d.High*n - c) / c}, true
}

// NaiveROI is (revenue − cost) / cost; not defined without a cost.
func NaiveROI(revenueCents, costCents int64) (float64, bool) {
	if costCents <= 0 {
		return 0, false
	}
	return float64(revenueCents-costCents) / float64(costCents), true
}

// NPS is % promoters (9–10) − % detractors (0–6), from −100 to 100.
func NPS(scores []int) (float64, bool) {
	var pro, det int64
	for _, s := range scores {
		switch {
		case s >= 9:
			pro++
		case s <= 6:
			det++
		}
	}
	return npsOf(int64(len(scores)), pro, det)
}

// npsOf is NPS from the counts: n answers, pro promoters, det detractors.
func npsOf(n, pro, det int64) (float64, bool) {
	if n == 0 {
		return 0, false
	}
	return 100 * float64(pro-det) / float64(n), true
}
