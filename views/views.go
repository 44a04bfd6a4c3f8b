// Package views holds Rapport's HTML templates, email templates and static
// assets, embedded so the binary is all there is to deploy.
package views

import (
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/rapport/rapport/campaigns"
)

//go:embed layouts pages static emails
var files embed.FS

// Pages is every page template the web layer renders; Engine refuses to
// start if one is missing, so a typo fails at boot rather than on a click.
var Pages = []string{
	"pages/login", "pages/error", "pages/customers", "pages/customer",
	"pages/import", "pages/import_status", "pages/users",
	"pages/campaigns", "pages/campaign_new", "pages/campaign", "pages/outbox", "pages/outbox_message", "pages/unsubscribe", "pages/rsvp", "pages/checkin", "pages/checkin_qr", "pages/finance", "pages/survey", "pages/followups", "pages/audit", "pages/home",
}

// Engine renders the pages for Fiber. Each page is parsed once, together
// with the layout, whose {{embed}} becomes a call of the page, so a render
// takes no lock. (gofiber/template/html renders every page with a layout
// under one mutex while it swaps the layout's embed function: at a few
// thousand RSVP answers a second every request queued on it.)
type Engine struct {
	pages map[string]*htmltemplate.Template // page name → the page and every layout
}

// NewEngine parses every page and layout once; it refuses a page missing
// from Pages, so a typo fails at boot rather than on a click.
func NewEngine() (*Engine, error) {
	layouts, err := fs.Glob(files, "layouts/*.html")
	if err != nil {
		return nil, err
	}
	pages, err := fs.Glob(files, "pages/*.html")
	if err != nil {
		return nil, err
	}
	e := &Engine{pages: map[string]*htmltemplate.Template{}}
	for _, file := range pages {
		name := strings.TrimSuffix(file, ".html")
		src, err := fs.ReadFile(files, file)
		if err != nil {
			return nil, err
		}
		t, err := htmltemplate.New(name).Funcs(Funcs).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("parse templates: %w", err)
		}
		for _, lf := range layouts {
			lsrc, err := fs.ReadFile(files, lf)
			if err != nil {
				return nil, err
			}
			body := strings.Replace(string(lsrc), "{{embed}}", `{{template "`+name+`" .}}`, 1)
			if _, err := t.New(strings.TrimSuffix(lf, ".html")).Parse(body); err != nil {
				return nil, fmt.Errorf("parse templates: %s with %s: %w", lf, name, err)
			}
		}
		e.pages[name] = t
	}
	for _, p := range Pages {
		if e.pages[p] == nil {
			return nil, fmt.Errorf("template %s is missing from views/", p)
		}
	}
	return e, nil
}

// Load is part of fiber.Views; the templates were parsed by NewEngine.
func (e *Engine) Load() error { return nil }

// Render writes a page, inside the named layout if one is given.
func (e *Engine) Render(w io.Writer, name string, data any, layout ...string) error {
	t := e.pages[name]
	if t == nil {
		return fmt.Errorf("render: template %s does not exist", name)
	}
	if len(layout) > 0 && layout[0] != "" {
		return t.ExecuteTemplate(w, layout[0], data)
	}
	return t.Execute(w, data)
}

// Static is the folder served at /static.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// Funcs are the helpers templates may call.
var Funcs = map[string]any{
	"money":     campaigns.FormatMoney,
	"levelName": func(l campaigns.Level) string { return l.Name() },
	"date": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("Jan 2, 2006 15:04 MST")
		case *time.Time:
			if v == nil {
				return "never"
			}
			return v.UTC().Format("Jan 2, 2006 15:04 MST")
		}
		return ""
	},
	"zoned": func(t *time.Time, zone string) string {
		if t == nil {
			return ""
		}
		return t.In(campaigns.Zone(zone)).Format("Jan 2, 2006 3:04 PM MST")
	},
	"pct": func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f%%", *p*100)
	},
	"share": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"derefi": func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	},
	"deref64": func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int) int { return a - b },
	"int": func(l campaigns.Level) int { return int(l) },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"derefs": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
}

// EmailNames are the emails Rapport sends; each has an .html and a .txt.
var EmailNames = []string{"invitation", "gift", "notice", "survey"}

// EmailTemplate is one email's two parts, parsed once.
type EmailTemplate struct {
	HTML *htmltemplate.Template
	Text *texttemplate.Template
}

// Emails parses every email template, or says which one is broken.
func Emails() (map[string]EmailTemplate, error) {
	out := map[string]EmailTemplate{}
	for _, n := range EmailNames {
		h, err := htmltemplate.ParseFS(files, "emails/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("parse email %s.html: %w", n, err)
		}
		t, err := texttemplate.ParseFS(files, "emails/"+n+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse email %s.txt: %w", n, err)
		}
		out[n] = EmailTemplate{HTML: h, Text: t}
	}
	return out, nil
}
