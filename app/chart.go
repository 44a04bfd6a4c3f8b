package app

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/rapport/rapport/campaigns"
)

// roiChart draws cost against revenue per campaign, and the incremental
// ROI with its interval, as inline SVG made on the server: no script, no
// CDN, readable on a phone (it scales to its container).
func roiChart(rows []campaigns.ROI) template.HTML {
	if len(rows) == 0 {
		return ""
	}
	const rowH, left, width = 34, 180, 720
	h := rowH*len(rows) + 40
	var maxMoney int64 = 1
	for _, r := range rows {
		maxMoney = max(maxMoney, r.CostCents, r.RevenueCents)
	}
	minR, maxR := -1.0, 1.0
	for _, r := range rows {
		if r.Incremental.ROI != nil {
			minR, maxR = min(minR, *r.Incremental.ROI), max(maxR, *r.Incremental.ROI)
		}
		if r.Incremental.Low != nil {
			minR, maxR = min(minR, *r.Incremental.Low), max(maxR, *r.Incremental.High)
		}
	}
	scale := func(v int64) float64 { return float64(v) / float64(maxMoney) * 260 }
	roiX := func(v float64) float64 { return 460 + (v-minR)/(maxR-minR)*240 }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title"><title id="chart-title">Cost against revenue, and incremental ROI with its 95%% interval, per campaign</title>`, width, h)
	fmt.Fprintf(&b, `<text x="%d" y="14" class="axis">cost <tspan class="costkey">■</tspan> revenue <tspan class="revkey">■</tspan></text>`+
		`<text x="460" y="14" class="axis">incremental ROI (95%% interval), %.0f%% to %.0f%%</text>`, left, minR*100, maxR*100)
	zero := roiX(0)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="22" x2="%.1f" y2="%d" class="zero"/><text x="%.1f" y="%d" class="axis" text-anchor="middle">0%%</text>`,
		zero, zero, h-14, zero, h-2)
	for i, r := range rows {
		y := 26 + i*rowH
		name := r.Name
		if len([]rune(name)) > 24 {
			name = string([]rune(name)[:23]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="label" text-anchor="end">%s</text>`, left-8, y+16, template.HTMLEscapeString(name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="11" class="cost"><title>cost %s</title></rect>`, left, y+2, scale(r.CostCents), campaigns.FormatMoney(r.CostCents))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="11" class="revenue"><title>revenue %s</title></rect>`, left, y+14, scale(r.RevenueCents), campaigns.FormatMoney(r.RevenueCents))
		switch inc := r.Incremental; {
		case inc.ROI != nil && inc.Low != nil:
			lo, hi, v := roiX(*inc.Low), roiX(*inc.High), roiX(*inc.ROI)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="ci"/><circle cx="%.1f" cy="%d" r="4" class="roi"><title>%.0f%% (%.0f%% to %.0f%%)</title></circle>`,
				lo, y+14, hi, y+14, v, y+14, *inc.ROI*100, *inc.Low*100, *inc.High*100)
		case inc.ROI != nil: // an estimate without an interval is drawn without one
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="4" class="roi"><title>%.0f%% (%s)</title></circle>`,
				roiX(*inc.ROI), y+14, *inc.ROI*100, template.HTMLEscapeString(inc.Reason))
		default:
			fmt.Fprintf(&b, `<text x="460" y="%d" class="axis">not measurable</text>`, y+18)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
