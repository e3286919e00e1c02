package synth

import "strconv"

// The traffic mix: what kinds of touchpoint ordinary leads, hot leads and
// anonymous visitors produce.

// kind is a touchpoint kind the generator can build.
type kind uint8

const (
	kPageView kind = iota
	kEmailOpen
	kEmailClick
	kFormSubmit
	kContentDownload
	kWebinarRegistered
	kWebinarAttended
	kEventAttended
	kDemoRequest
	kUnsubscribe
	kEmailBounce
)

// page is a section of the (fictional) vendor's web site.
type page uint8

const (
	pgHome page = iota
	pgBlog
	pgDocs
	pgProduct
	pgPricing
	pgCustomers
	pgCompare
	pgCareers
	pgAbout
	pgIntegrations
	numPages
)

// step is one touch of a hot lead's journey.
type step struct {
	kind kind
	page page
	form string // form_submit only
}

// journey is what a hot lead does, in order, each step but the demo request
// skipped with probability 0.15. Under the default model the steps are
// worth 130 engagement points, 50 of them the demo request, and the lead's
// senior title gives enough fit: it usually qualifies at the demo request,
// else soon after with the touches that follow (afterJourney).
var journey = []step{
	{kind: kPageView, page: pgBlog},
	{kind: kEmailOpen},
	{kind: kEmailClick, page: pgPricing},
	{kind: kPageView, page: pgPricing},
	{kind: kContentDownload},
	{kind: kWebinarRegistered},
	{kind: kPageView, page: pgCustomers},
	{kind: kWebinarAttended},
	{kind: kPageView, page: pgCompare},
	{kind: kPageView, page: pgPricing},
	{kind: kDemoRequest},
}

// afterJourney is what a hot lead keeps doing once it has asked for a demo.
var afterJourney = []step{
	{kind: kPageView, page: pgPricing},
	{kind: kPageView, page: pgDocs},
	{kind: kPageView, page: pgDocs},
	{kind: kPageView, page: pgIntegrations},
	{kind: kPageView, page: pgCustomers},
	{kind: kEmailOpen},
	{kind: kEmailClick, page: pgDocs},
	{kind: kEventAttended},
	{kind: kFormSubmit, form: "contact-sales"},
}

// coldMix is the kind distribution of ordinary leads, per mille.
var coldMix = []struct {
	kind  kind
	perMl int
}{
	{kPageView, 527},
	{kEmailOpen, 250},
	{kEmailClick, 80},
	{kFormSubmit, 40},
	{kContentDownload, 50},
	{kWebinarRegistered, 20},
	{kWebinarAttended, 6},
	{kEventAttended, 4},
	{kDemoRequest, 1},
	{kUnsubscribe, 12},
	{kEmailBounce, 10},
}

// coldPages is the page distribution of ordinary visits, per mille: the
// pricing page is rare.
var coldPages = [numPages]int{
	pgHome: 200, pgBlog: 350, pgDocs: 130, pgProduct: 80, pgPricing: 40,
	pgCustomers: 40, pgCompare: 20, pgCareers: 60, pgAbout: 40, pgIntegrations: 40,
}

const site = "https://www.example.com"

var (
	blogSlugs = []string{
		"what-is-lead-scoring", "mql-vs-sql", "decay-in-lead-scoring", "intent-data-101",
		"b2b-funnel-benchmarks-2026", "abm-playbook", "email-nurture-that-works",
		"marketing-ops-stack", "webinar-checklist", "attribution-models-explained",
	}
	docsPages = []string{
		"getting-started", "install", "scoring-models", "integrations/salesforce",
		"integrations/hubspot", "api/touchpoints", "security", "faq",
	}
	customers    = []string{"acme", "globex", "initech", "hooli", "northwind", "contoso"}
	competitors  = []string{"legacy-crm", "spreadsheet", "in-house"}
	integrations = []string{"salesforce", "hubspot", "segment", "snowflake", "slack"}
	assets       = []string{
		"ebook-lead-scoring-101", "report-state-of-b2b-2026", "whitepaper-intent-data",
		"checklist-mql-handoff", "template-scoring-model",
	}
	emailCampaigns = []string{
		"newsletter-2026-11", "nurture-onboarding", "nurture-evaluation",
		"product-update-q4", "webinar-invite-ai-scoring",
	}
	webinars = []string{
		"webinar-ai-scoring-2026-11", "webinar-abm-in-practice", "webinar-revops-roundtable",
	}
	events = []string{
		"saastr-europa-2026", "web-summit-2026", "field-dinner-nyc", "mops-meetup-berlin",
	}
	paidCampaigns   = []string{"paid-search-brand", "paid-search-generic", "linkedin-abm-q4"}
	socialCampaigns = []string{"linkedin-organic", "x-organic", "youtube-demo-video"}
	// Forms of ordinary leads: mostly newsletter sign-ups and gated
	// content, a contact-sales request one time in twenty.
	coldForms = []string{
		"newsletter", "newsletter", "newsletter", "newsletter", "newsletter", "newsletter",
		"newsletter", "newsletter", "newsletter", "newsletter", "newsletter", "newsletter",
		"ebook-gate", "ebook-gate", "ebook-gate", "ebook-gate", "ebook-gate",
		"event-signup", "event-signup", "contact-sales",
	}
	referrers = []string{
		"https://www.google.com/", "https://www.linkedin.com/", "https://duckduckgo.com/",
		"https://news.ycombinator.com/", "https://www.bing.com/",
	}
)

// appendURL appends a URL of page p.
func (g *Generator) appendURL(dst []byte, p page) []byte {
	dst = append(dst, site...)
	h := g.rng.Uint64()
	switch p {
	case pgHome:
		return append(dst, '/')
	case pgBlog:
		return append(append(dst, "/blog/"...), pick(blogSlugs, h)...)
	case pgDocs:
		return append(append(dst, "/docs/"...), pick(docsPages, h)...)
	case pgProduct:
		return append(dst, "/product"...)
	case pgPricing:
		if h%4 == 0 {
			return append(dst, "/pricing/enterprise"...)
		}
		return append(dst, "/pricing"...)
	case pgCustomers:
		return append(append(dst, "/customers/"...), pick(customers, h)...)
	case pgCompare:
		return append(append(dst, "/compare/"...), pick(competitors, h)...)
	case pgCareers:
		return append(dst, "/careers"...)
	case pgAbout:
		return append(dst, "/about"...)
	default:
		return append(append(dst, "/integrations/"...), pick(integrations, h)...)
	}
}

func (g *Generator) coldPage() page {
	n := g.rng.IntN(1000)
	for p, w := range coldPages {
		if n < w {
			return page(p)
		}
		n -= w
	}
	return pgHome
}

// setLead fills the ids of lead i, who works at a.
func (g *Generator) setLead(t *touch, i int, a *account) {
	t.leadID = g.pop.appendLeadID(t.leadID, i)
	t.account = a.appendDomain(t.account)
}

// coldTouch builds an ordinary touch of lead i.
func (g *Generator) coldTouch(t *touch, i int) {
	hot := g.isHot(i)
	l := g.pop.lead(i, hot)
	a := g.pop.account(l.account)
	g.setLead(t, i, &a)
	n := g.rng.IntN(1000)
	k := kPageView
	for _, m := range coldMix {
		if n < m.perMl {
			k = m.kind
			break
		}
		n -= m.perMl
	}
	s := step{kind: k}
	switch k {
	case kPageView:
		s.page = g.coldPage()
	case kEmailClick:
		s.page = pgBlog
		if g.rng.IntN(10) == 0 {
			s.page = pgPricing
		}
	case kFormSubmit:
		s.form = pick(coldForms, g.rng.Uint64())
	}
	g.build(t, s, i, &l, &a)
}

// hotTouch builds the next touch of hot lead number k (an index into g.hot).
func (g *Generator) hotTouch(t *touch, k int) {
	i := int(g.hot[k])
	l := g.pop.lead(i, true)
	a := g.pop.account(l.account)
	g.setLead(t, i, &a)
	var s step
	for {
		st := int(g.stage[k])
		if st >= len(journey) {
			s = afterJourney[g.rng.IntN(len(afterJourney))]
			break
		}
		g.stage[k]++
		s = journey[st]
		if s.kind == kDemoRequest || g.rng.Float64() >= 0.15 {
			break
		}
	}
	g.build(t, s, i, &l, &a)
}

// anonTouch builds a page view of an anonymous visitor.
func (g *Generator) anonTouch(t *touch) {
	v := g.rng.IntN(g.pop.anons)
	t.anonID = appendAnonID(t.anonID, mix(g.cfg.Seed, saltAnon, uint64(v)))
	t.typ = "page_view"
	g.webChannel(t)
	g.pageProps(t, g.coldPage())
}

// webChannel sets the channel and campaign of a web visit: mostly direct
// or organic, some paid and social.
func (g *Generator) webChannel(t *touch) {
	switch u := g.rng.IntN(10); {
	case u < 7:
		t.channel = "web"
	case u < 8:
		t.channel = "paid"
		t.campaign = pick(paidCampaigns, g.rng.Uint64())
	case u < 9:
		t.channel = "social"
		t.campaign = pick(socialCampaigns, g.rng.Uint64())
	default:
		t.channel = "email"
		t.campaign = pick(emailCampaigns, g.rng.Uint64())
	}
}

func (g *Generator) pageProps(t *touch, p page) {
	t.propBytes("url", func(b []byte) []byte { return g.appendURL(b, p) })
	if g.rng.IntN(4) == 0 {
		t.prop("referrer", pick(referrers, g.rng.Uint64()))
	}
}

// build fills t's type, channel, campaign, properties and traits for step
// s of lead i.
func (g *Generator) build(t *touch, s step, i int, l *lead, a *account) {
	traits := false
	switch s.kind {
	case kPageView:
		t.typ = "page_view"
		g.webChannel(t)
		g.pageProps(t, s.page)
		if g.rng.IntN(5) == 0 {
			t.anonID = appendAnonID(t.anonID, mix(g.cfg.Seed, saltLeadAnon, uint64(i)))
		}
	case kEmailOpen, kEmailClick, kUnsubscribe, kEmailBounce:
		t.channel = "email"
		t.campaign = pick(emailCampaigns, g.rng.Uint64())
		t.propBytes("email_id", func(b []byte) []byte {
			b = append(b, t.campaign...)
			b = append(b, "-v"...)
			return strconv.AppendInt(b, int64(1+g.rng.IntN(3)), 10)
		})
		switch s.kind {
		case kEmailOpen:
			t.typ = "email_open"
		case kEmailClick:
			t.typ = "email_click"
			t.propBytes("url", func(b []byte) []byte { return g.appendURL(b, s.page) })
		case kUnsubscribe:
			t.typ = "unsubscribe"
			t.prop("list", "marketing")
		default:
			t.typ = "email_bounce"
			if g.rng.IntN(3) == 0 {
				t.prop("bounce_type", "soft")
			} else {
				t.prop("bounce_type", "hard")
			}
		}
	case kFormSubmit:
		t.typ = "form_submit"
		t.channel = "web"
		t.prop("form_id", s.form)
		t.propBytes("url", func(b []byte) []byte { return g.appendURL(b, pgHome) })
		traits = true
	case kContentDownload:
		t.typ = "content_download"
		g.webChannel(t)
		asset := pick(assets, g.rng.Uint64())
		t.prop("asset", asset)
		t.propBytes("url", func(b []byte) []byte {
			return append(append(append(b, site...), "/resources/"...), asset...)
		})
		traits = g.rng.IntN(2) == 0
	case kWebinarRegistered, kWebinarAttended:
		w := pick(webinars, g.rng.Uint64())
		t.campaign = w
		t.prop("webinar_id", w)
		if s.kind == kWebinarRegistered {
			t.typ = "webinar_registered"
			t.channel = "web"
			traits = true
		} else {
			t.typ = "webinar_attended"
			t.channel = "event"
			t.propInt("minutes_watched", int64(5+g.rng.IntN(56)))
		}
	case kEventAttended:
		t.typ = "event_attended"
		t.channel = "event"
		e := pick(events, g.rng.Uint64())
		t.campaign = e
		t.prop("event_name", e)
		t.propBool("badge_scanned", g.rng.IntN(4) != 0)
		traits = g.rng.IntN(2) == 0
	case kDemoRequest:
		t.typ = "demo_request"
		t.channel = "web"
		if g.rng.IntN(5) == 0 {
			t.channel = "sales"
		}
		t.prop("form_id", "demo-request")
		t.propBytes("url", func(b []byte) []byte { return append(append(b, site...), "/demo"...) })
		traits = true
	}
	if traits {
		g.setTraits(t, l, a, s.form == "newsletter")
	}
}

// setTraits adds the lead's traits as a form or enrichment provides them:
// a newsletter form asks only for e-mail, first name and country.
func (g *Generator) setTraits(t *touch, l *lead, a *account, light bool) {
	add := func(key string, f func([]byte) []byte) {
		start := len(t.scratch)
		t.scratch = f(t.scratch)
		t.traits = append(t.traits, attr{key: key, b: t.scratch[start:len(t.scratch):len(t.scratch)], kind: attrBytes})
	}
	str := func(key, v string) { t.traits = append(t.traits, attr{key: key, s: v}) }
	add("email", func(b []byte) []byte {
		b = append(b, l.first...)
		b = append(b, '.')
		b = append(b, l.last...)
		b = append(b, '@')
		return a.appendDomain(b)
	})
	str("first_name", capitalize(l.first))
	if !light {
		str("last_name", capitalize(l.last))
		str("title", l.title)
		add("company", a.appendName)
		t.traits = append(t.traits, attr{key: "company_size", num: int64(a.size), kind: attrInt})
		str("industry", a.industry)
	}
	str("country", a.country)
}

var capitalized = func() map[string]string {
	m := make(map[string]string, len(firstNames)+len(lastNames))
	for _, list := range [][]string{firstNames, lastNames} {
		for _, s := range list {
			m[s] = string(s[0]-'a'+'A') + s[1:]
		}
	}
	return m
}()

func capitalize(s string) string { return capitalized[s] }
