package campaigns_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
)

func TestWelchByHand(t *testing.T) {
	// treated: 10, 20, 30 (mean 20, var 100); holdout: 0, 10 (mean 5, var 50)
	tr := campaigns.SampleOf([]int64{10, 20, 30})
	ho := campaigns.SampleOf([]int64{0, 10})
	require.Equal(t, 20.0, tr.Mean)
	require.Equal(t, 100.0, tr.Var)
	require.Equal(t, 50.0, ho.Var)
	diff, ci, ok := campaigns.WelchDiff(tr, ho)
	require.True(t, ok)
	require.Equal(t, 15.0, diff)
	require.NotNil(t, ci)
	// se = sqrt(100/3 + 50/2) = sqrt(58.333) = 7.6376; df = 58.333² / ((33.333²/2) + (25²/1)) = 3402.8/1180.6 = 2.882
	se := math.Sqrt(100.0/3 + 25)
	df := math.Pow(100.0/3+25, 2) / (math.Pow(100.0/3, 2)/2 + math.Pow(25, 2)/1)
	require.InDelta(t, 2.882, df, 0.001)
	// t(0.975, 2.882) by interpolation: 4.303 - 0.882 x (4.303 - 3.182) = 3.3143
	q := 4.303 - 0.882*(4.303-3.182)
	require.InDelta(t, 15-q*se, ci.Low, 0.01)
	require.InDelta(t, 15+q*se, ci.High, 0.01)

	_, _, ok = campaigns.WelchDiff(tr, campaigns.SampleOf([]int64{5}))
	require.False(t, ok, "one holdout customer is not a comparison")
}

func TestTQuantileAgainstTables(t *testing.T) {
	// Standard tables (two-sided 95%).
	for df, want := range map[int]float64{3: 3.182, 5: 2.571, 10: 2.228, 30: 2.042, 120: 1.980} {
		// A holdout without variance leaves Welch's df at n-1 of the treated.
		tr := campaigns.Sample{N: df + 1, Mean: 1, Var: 1}
		ho := campaigns.Sample{N: 1_000_000, Mean: 0, Var: 0}
		_, ci, _ := campaigns.WelchDiff(tr, ho)
		se := math.Sqrt(1 / float64(df+1))
		require.InDelta(t, want, (ci.High-ci.Low)/2/se, 0.01, "df %d", df)
	}
}

func TestNaiveAndIncrementalROIAndNPS(t *testing.T) {
	r, ok := campaigns.NaiveROI(150000, 100000)
	require.True(t, ok)
	require.Equal(t, 0.5, r)
	_, ok = campaigns.NaiveROI(100, 0)
	require.False(t, ok, "no cost, no ratio")

	// 5 treated spending 100,100,200,300,300 (mean 200); 5 held out 0,0,50,100,100 (mean 50)
	// ((200-50) x 5 - 500) / 500 = 0.5
	roi, ci, ok := campaigns.IncrementalROI(campaigns.SampleOf([]int64{100, 100, 200, 300, 300}), campaigns.SampleOf([]int64{0, 0, 50, 100, 100}), 500)
	require.True(t, ok)
	require.InDelta(t, 0.5, roi, 1e-9)
	require.Less(t, ci.Low, roi)
	require.Greater(t, ci.High, roi)

	nps, ok := campaigns.NPS([]int{10, 9, 9, 8, 7, 6, 0, 10, 3, 9, 10, 5})
	// promoters 6 (10,9,9,10,9,10), detractors 4 (6,0,3,5) of 12: 100*(6-4)/12 = 16.67
	require.True(t, ok)
	require.InDelta(t, 16.6667, nps, 0.001)
	_, ok = campaigns.NPS(nil)
	require.False(t, ok)
}

// The interval is given only with at least MinIntervalGroup customers in
// each group whose revenue varies; a zero-width interval would read as
// certain ("900% (900% to 900%)").
func TestIncrementalROIInterval(t *testing.T) {
	same := func(n int, v int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	cases := []struct {
		name             string
		treated, holdout []int64
		ok, interval     bool
	}{
		{"no spread in either group", same(10, 1000), same(10, 0), true, false},
		{"no spread, the fewest for an interval", same(5, 1000), same(5, 0), true, false},
		{"one group varies", same(10, 1000), []int64{0, 0, 0, 0, 100}, true, true},
		{"four held out", []int64{900, 1000, 1100, 1000, 1000}, []int64{0, 10, 20, 30}, true, false},
		{"four treated", []int64{900, 1000, 1100, 1000}, []int64{0, 10, 20, 30, 40}, true, false},
		{"five and five", []int64{900, 1000, 1100, 1000, 1000}, []int64{0, 10, 20, 30, 40}, true, true},
		{"two and two", []int64{900, 1100}, []int64{0, 10}, true, false},
		{"one held out", same(10, 1000), []int64{0}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			roi, ci, ok := campaigns.IncrementalROI(campaigns.SampleOf(c.treated), campaigns.SampleOf(c.holdout), 1000)
			require.Equal(t, c.ok, ok)
			require.Equal(t, c.interval, ci != nil, "interval %+v", ci)
			if ci != nil {
				require.Less(t, ci.Low, roi)
				require.Greater(t, ci.High, roi)
			}
		})
	}
	_, ci, ok := campaigns.WelchDiff(campaigns.SampleOf(same(3, 7)), campaigns.SampleOf(same(3, 2)))
	require.True(t, ok)
	require.Nil(t, ci, "no standard error, no interval")
}
