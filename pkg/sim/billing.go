package sim

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/events"
)

// The billing model: every tenant is an account (country, currency, card)
// with subscriptions, one per managed application, each on a plan billed
// monthly or yearly. At each period's end a subscription renews: an invoice
// with line items (the plan for the new period, overage for the closing
// one, credit from a downgrade) is issued and charged an hour later. A
// failed charge is retried on days 3, 5 and 7 (dunning); the invoice is
// overdue on day 8, the subscription suspended on day 14 and cancelled with
// the invoice voided on day 30. Usage climbs daily toward the plan's limits
// with alerts at 80, 90 and 100 %; customers upgrade when they hit a limit
// and downgrade when they use little, with proration.
//
// Invoice states:       open → paid | overdue;  overdue → paid | void
// Subscription states:  active → past_due | cancelled;  past_due → active |
// suspended;  suspended → active | cancelled

var invoiceTransitions = map[string][]string{
	"":                    {events.InvoiceOpen},
	events.InvoiceOpen:    {events.InvoicePaid, events.InvoiceOverdue},
	events.InvoiceOverdue: {events.InvoicePaid, events.InvoiceVoid},
}

var subscriptionTransitions = map[string][]string{
	"":                           {events.SubscriptionActive},
	events.SubscriptionActive:    {events.SubscriptionPastDue, events.SubscriptionCancelled},
	events.SubscriptionPastDue:   {events.SubscriptionActive, events.SubscriptionSuspended},
	events.SubscriptionSuspended: {events.SubscriptionActive, events.SubscriptionCancelled},
}

func allowedString(table map[string][]string, from, to string) bool {
	for _, s := range table[from] {
		if s == to {
			return true
		}
	}
	return false
}

type account struct {
	tenant   string
	country  country
	brand    string
	last4    string
	cardExp  time.Time
	credit   int64 // from downgrades, applied to the next invoice
	invoiceN int

	// Ledger of credit, for tests: granted − applied = credit.
	creditGranted, creditApplied int64
}

type subscription struct {
	id       string
	acct     *account
	product  *profile
	plan     *plan
	interval string
	status   string

	start, end time.Time // current period
	storage    float64   // GB in use
	growth     float64   // GB per day
	requests   int64     // this period
	perDay     float64   // typical requests per day
	alerted    map[string]int
	exceeded   bool // a limit reached 100 % this period
	changed    bool // plan changed this period
	held       bool // renewal waits for reactivation
	open       *invoice
}

type invoice struct {
	id       string
	sub      *subscription
	status   string
	plan     string
	total    int64
	issued   time.Time
	details  events.InvoiceDetails
	attempts int
}

type billing struct {
	*model
	cfg       Config
	setup     *rng // accounts and subscriptions
	customers *rng // what customers do
	network   *rng // what the card network answers
	ids       *rng
	accounts  []*account
	weights   []float64
	subs      []*subscription

	issued, paymentsFailed int

	// Hooks for tests.
	onInvoice      func(inv *invoice, from, to string)
	onSubscription func(s *subscription, from, to string)
}

func (s *subscription) price() int64 {
	p := s.plan.price[s.acct.country.currency]
	if s.interval == intervalYear {
		return 10 * p
	}
	return p
}

func (s *subscription) months() int64 {
	if s.interval == intervalYear {
		return 12
	}
	return 1
}

func (s *subscription) requestLimit() int64 { return s.plan.requests * s.months() }

func nextPeriod(from time.Time, interval string) time.Time {
	if interval == intervalYear {
		return from.AddDate(1, 0, 0)
	}
	return from.AddDate(0, 1, 0)
}

// subscriptionCount turns Config.Rate into a number of subscriptions.
func subscriptionCount(cfg Config) int {
	month := 30 * day
	n := int(math.Round(cfg.Rate * month.Seconds() / (cfg.Speed * eventsPerSubMonth)))
	return max(len(cfg.Tenants), min(n, len(cfg.Tenants)*maxSubsPerTenant))
}

func newBilling(cfg Config) (*billing, error) {
	m, err := newModel(cfg.Start, 0, cfg.Tenants, events.TypeBillingInvoice, events.TypeAdminBillingAlert, events.TypeSystemHealth)
	if err != nil {
		return nil, err
	}
	b := &billing{
		model:     m,
		cfg:       cfg,
		setup:     newRNG(cfg.Seed, "billing/setup"),
		customers: newRNG(cfg.Seed, "billing/customers"),
		network:   newRNG(cfg.Seed, "billing/network"),
		ids:       newRNG(cfg.Seed, "billing/ids"),
	}
	for _, t := range cfg.Tenants {
		a := &account{tenant: t, country: pick(b.setup, countries)}
		b.newCard(a, b.setup, 15*day, 720*day)
		b.accounts = append(b.accounts, a)
		b.weights = append(b.weights, b.setup.lognormal(1, 0.6))
	}
	n := subscriptionCount(cfg)
	if want := int(math.Round(cfg.Rate * (30 * day).Seconds() / (cfg.Speed * eventsPerSubMonth))); want > n {
		cfg.Logger.Warn("billing: -rate is out of reach at this -speed with these tenants; raise -speed or -tenants",
			"subscriptions", n, "needed", want)
	}
	for i := range n {
		a := b.accounts[i%len(b.accounts)]
		if i >= len(b.accounts) {
			a = b.accounts[b.setup.weighted(b.weights)]
		}
		b.addSubscription(a, true)
	}
	b.sched.every(0, max(cfg.simSpan(healthEvery), time.Second), func() bool { b.beat(); return true })
	return b, nil
}

func (b *billing) newCard(a *account, g *rng, minLife, maxLife time.Duration) {
	a.brand = pick(g, cardBrands)
	a.last4 = fmt.Sprintf("%04d", g.intn(10000))
	a.cardExp = b.now().Add(minLife + time.Duration(g.float()*float64(maxLife-minLife))).Truncate(time.Second)
}

// addSubscription creates a subscription: at start-up one already in the
// middle of its period (initial), later a new sign-up.
func (b *billing) addSubscription(a *account, initial bool) {
	g := b.setup
	if !initial {
		g = b.customers
	}
	s := &subscription{
		id:       b.ids.id("sub_", 14),
		acct:     a,
		product:  &profiles[g.weighted([]float64{3, 2, 1.5, 1.5, 1, 1})],
		plan:     &plans[g.weighted([]float64{0.4, 0.35, 0.18, 0.07})],
		interval: intervalMonth,
		alerted:  make(map[string]int),
	}
	if g.chance(annualShare) {
		s.interval = intervalYear
	}
	limitGB := float64(s.plan.storageGB)
	s.perDay = g.lognormal(0.6, 0.4) * float64(s.plan.requests) / 30
	s.growth = limitGB * g.lognormal(0.004, 0.7)
	if initial {
		// Somewhere in the middle of its period.
		length := nextPeriod(b.now(), s.interval).Sub(b.now())
		s.end = b.now().Add(time.Hour + time.Duration(g.float()*float64(length))).Truncate(time.Hour)
		s.start = previousPeriod(s.end, s.interval)
		if s.start.After(b.now()) {
			s.start = b.now()
		}
		s.requests = int64(s.perDay * b.now().Sub(s.start).Hours() / 24 * g.lognormal(1, 0.1))
		s.storage = limitGB * (0.3 + 0.45*g.float())
	} else {
		s.start = b.now()
		s.end = nextPeriod(s.start, s.interval)
		s.storage = limitGB * (0.05 + 0.25*g.float())
	}
	b.subs = append(b.subs, s)
	b.setStatus(s, events.SubscriptionActive, "")
	if !initial {
		b.emitSubscription(s, fmt.Sprintf("Subscription %s to %s started on the %s plan (%s, billed %sly)",
			s.id, s.product.product, s.plan.name, formatMoney(s.price(), a.country.currency), s.interval), "")
		b.issue(s, []events.LineItem{b.feeLine(s, s.start, s.end)}, s.start, s.end, "first period")
	}
	// A daily usage tick at the subscription's own hour, and the renewal.
	b.sched.every(time.Duration(g.intn(24*60))*time.Minute, day, func() bool { return b.tick(s) })
	b.sched.at(s.end, func() { b.renew(s) })
}

func previousPeriod(end time.Time, interval string) time.Time {
	if interval == intervalYear {
		return end.AddDate(-1, 0, 0)
	}
	return end.AddDate(0, -1, 0)
}

func (b *billing) setStatus(s *subscription, to, message string) {
	from := s.status
	if !allowedString(subscriptionTransitions, from, to) && b.err == nil {
		b.err = fmt.Errorf("sim: subscription %s: impossible transition %q → %q", s.id, from, to)
	}
	if b.onSubscription != nil {
		b.onSubscription(s, from, to)
	}
	s.status = to
	if message != "" {
		b.emitSubscription(s, message, from)
	}
}

func (b *billing) setInvoice(inv *invoice, to string) {
	from := inv.status
	if !allowedString(invoiceTransitions, from, to) && b.err == nil {
		b.err = fmt.Errorf("sim: invoice %s: impossible transition %q → %q", inv.id, from, to)
	}
	if b.onInvoice != nil {
		b.onInvoice(inv, from, to)
	}
	inv.status = to
}

// base is the data every billing event of s starts from.
func (b *billing) base(s *subscription, kind, status string, amount int64, message string) events.Billing {
	return events.Billing{
		TenantID:       s.acct.tenant,
		Type:           kind,
		Status:         status,
		Amount:         amount,
		Currency:       s.acct.country.currency,
		SubscriptionID: s.id,
		PlanName:       s.plan.name,
		Message:        message,
		Metadata:       events.BillingMetadata{Product: s.product.product, Interval: s.interval},
		Timestamp:      b.now(),
	}
}

func (b *billing) emitSubscription(s *subscription, message, previous string) {
	ev := b.base(s, events.BillingSubscription, s.status, s.price(), message)
	ev.Metadata.PreviousStatus = previous
	b.emit(events.TypeBillingSubscription, s.acct.tenant, s.id, ev)
}

func (b *billing) admin(s *subscription, kind, severity string, inv *invoice, amount int64, message string) {
	a := events.AdminBillingAlert{
		AlertID:        b.ids.id("bal-", 12),
		Kind:           kind,
		Severity:       severity,
		TenantID:       s.acct.tenant,
		SubscriptionID: s.id,
		Amount:         amount,
		Currency:       s.acct.country.currency,
		Message:        message,
		Timestamp:      b.now(),
	}
	if inv != nil {
		a.InvoiceID = inv.id
	}
	b.emit(events.TypeAdminBillingAlert, "", a.AlertID, a)
}

// tick is a subscription's day: usage accrues, limits are checked, and the
// customer may change plan. It returns false once the subscription is gone.
func (b *billing) tick(s *subscription) bool {
	if s.status == events.SubscriptionCancelled {
		return false
	}
	if s.status == events.SubscriptionSuspended {
		return true
	}
	g := b.customers
	weekday := b.now().Weekday()
	f := 1.0
	if weekday == time.Saturday || weekday == time.Sunday {
		f = 0.6
	}
	s.requests += int64(s.perDay * f * g.lognormal(1, 0.25))
	s.storage += s.growth * g.lognormal(1, 0.5)
	if g.chance(0.01) { // a cleanup
		s.storage *= 0.8
	}
	b.checkUsage(s)
	// Customers change plans mid-period, not on its last day.
	if s.status == events.SubscriptionActive && s.open == nil && !s.changed && s.end.Sub(b.now()) > day {
		b.maybeChangePlan(s)
	}
	return true
}

// usage is a resource's use of its plan limit.
type usage struct {
	resource, unit, label string
	used, limit           int64
	overage               int64 // minor units owed for use above the limit
}

func (b *billing) usages(s *subscription) []usage {
	cur := s.acct.country.currency
	st := int64(math.Ceil(s.storage))
	us := []usage{
		{"storage", "GB", "Storage", st, s.plan.storageGB, 0},
		{"requests", "requests", "API requests", s.requests, s.requestLimit(), 0},
	}
	if over := st - s.plan.storageGB; over > 0 {
		us[0].overage = over * storageOverage[cur]
	}
	if over := s.requests - s.requestLimit(); over > 0 {
		us[1].overage = (over + requestsUnit - 1) / requestsUnit * requestsOverage[cur]
	}
	return us
}

// checkUsage alerts once per threshold crossed (the highest one crossed
// since the last alert). Requests re-arm each period; storage re-arms when
// it falls back under 75 % (cleanup, upgrade).
func (b *billing) checkUsage(s *subscription) {
	for _, u := range b.usages(s) {
		pct := int(u.used * 100 / u.limit)
		level := 0
		for _, th := range []int{80, 90, 100} {
			if pct >= th {
				level = th
			}
		}
		if level <= s.alerted[u.resource] {
			if pct < 75 {
				s.alerted[u.resource] = 0
			}
			continue
		}
		s.alerted[u.resource] = level
		status, msg := events.UsageWarning, ""
		cur := s.acct.country.currency
		switch level {
		case 80:
			msg = fmt.Sprintf("%s at %d%% of the %s %s included in the %s plan", u.label, pct, formatCount(u.limit), u.unit, s.plan.name)
		case 90:
			status = events.UsageCritical
			msg = fmt.Sprintf("%s at %d%% of the %s %s included in the %s plan: consider upgrading", u.label, pct, formatCount(u.limit), u.unit, s.plan.name)
		default:
			status = events.UsageExceeded
			s.exceeded = true
			msg = fmt.Sprintf("%s limit of the %s plan exceeded (%d%%): usage above %s %s is billed as overage, %s so far",
				u.label, s.plan.name, pct, formatCount(u.limit), u.unit, formatMoney(u.overage, cur))
		}
		ev := b.base(s, events.BillingUsageAlert, status, u.overage, msg)
		ev.Metadata.Resource, ev.Metadata.Unit = u.resource, u.unit
		ev.Metadata.Usage, ev.Metadata.Limit = u.used, u.limit
		ev.Metadata.Percentage, ev.Metadata.Threshold = pct, level
		b.emit(events.TypeBillingUsageAlert, s.acct.tenant, s.id, ev)
	}
}

func (b *billing) maybeChangePlan(s *subscription) {
	g := b.customers
	tier := s.plan.tier
	elapsed := float64(b.now().Sub(s.start)) / float64(s.end.Sub(s.start))
	switch {
	case tier < len(plans)-1 && s.exceeded && g.chance(upgradeWhenExceeded):
		b.changePlan(s, &plans[tier+1])
	case tier < len(plans)-1 && g.chance(spontaneousUpgrade):
		b.changePlan(s, &plans[tier+1])
	case tier > 0 && elapsed > 0.6:
		lower := plans[tier-1]
		projected := float64(s.requests) / elapsed / float64(lower.requests*s.months())
		if projected < 0.5 && s.storage < 0.6*float64(lower.storageGB) && g.chance(downgradeWhenIdle) {
			b.changePlan(s, &plans[tier-1])
		}
	}
}

// changePlan moves s to p for the rest of its period: the unused time on the
// old plan is credited and the remaining time on the new one charged, both
// prorated to the second. An upgrade's net charge is invoiced at once; a
// downgrade's net credit goes to the account and is applied to the next
// invoice.
func (b *billing) changePlan(s *subscription, p *plan) {
	old := s.plan
	oldPrice := s.price()
	remaining, whole := s.end.Sub(b.now()), s.end.Sub(s.start)
	s.plan = p
	newPrice := s.price()
	credit, charge := prorate(oldPrice, remaining, whole), prorate(newPrice, remaining, whole)
	net := charge - credit
	s.changed = true
	cur := s.acct.country.currency

	status, msg := events.PlanUpgraded, fmt.Sprintf("Upgraded from %s to %s: %s charged now for the rest of the period (%s)",
		old.name, p.name, formatMoney(net, cur), periodLabel(b.now(), s.end))
	if net < 0 {
		status, msg = events.PlanDowngraded, fmt.Sprintf("Downgraded from %s to %s: %s credited to the next invoice",
			old.name, p.name, formatMoney(-net, cur))
	}
	ev := b.base(s, events.BillingPlanChange, status, net, msg)
	ev.Metadata.FromPlan, ev.Metadata.ToPlan = old.name, p.name
	ev.Metadata.ProrationCredit, ev.Metadata.ProrationCharge = credit, charge
	b.emit(events.TypeBillingPlanChange, s.acct.tenant, s.id, ev)

	// Limits changed: alert again only for thresholds crossed afresh.
	for _, u := range b.usages(s) {
		pct := int(u.used * 100 / u.limit)
		for _, th := range []int{100, 90, 80, 0} {
			if pct >= th {
				s.alerted[u.resource] = min(s.alerted[u.resource], th)
				break
			}
		}
	}
	s.exceeded = false

	switch {
	case net > 0:
		label := periodLabel(b.now(), s.end)
		b.issue(s, []events.LineItem{
			{Description: fmt.Sprintf("Unused time on %s (%s)", old.name, label), Quantity: 1, UnitAmount: -credit, Amount: -credit},
			{Description: fmt.Sprintf("Remaining time on %s (%s)", p.name, label), Quantity: 1, UnitAmount: charge, Amount: charge},
		}, b.now(), s.end, "proration")
	case net < 0:
		s.acct.credit -= net
		s.acct.creditGranted -= net
	}
}

func (b *billing) feeLine(s *subscription, from, to time.Time) events.LineItem {
	p := s.price()
	return events.LineItem{
		Description: fmt.Sprintf("%s — %s plan, %sly (%s)", s.product.product, s.plan.name, s.interval, periodLabel(from, to)),
		Quantity:    1, UnitAmount: p, Amount: p,
	}
}

// renew closes the period: overage of the closing period and the plan for
// the next one are invoiced, the request meter resets.
func (b *billing) renew(s *subscription) {
	switch {
	case s.status == events.SubscriptionCancelled:
		return
	case s.status == events.SubscriptionSuspended:
		s.held = true // renewed when reactivated
		return
	case s.open != nil:
		// Renewal waits until the open invoice is settled or written off.
		b.sched.after(day, func() { b.renew(s) })
		return
	case b.customers.chance(churnAtRenewal):
		b.setStatus(s, events.SubscriptionCancelled, fmt.Sprintf("Subscription %s to %s cancelled by the customer at the end of the period", s.id, s.product.product))
		b.admin(s, events.AdminSubscriptionCancelled, events.SeverityInfo, nil, s.price(),
			fmt.Sprintf("%s cancelled %s (%s, %s/%s)", s.acct.tenant, s.product.product, s.plan.name, formatMoney(s.price(), s.acct.country.currency), s.interval))
		b.replaceLater(s.acct)
		return
	}
	closingFrom, closingTo := s.start, s.end
	cur := s.acct.country.currency
	var lines []events.LineItem
	s.start, s.end = s.end, nextPeriod(s.end, s.interval)
	lines = append(lines, b.feeLine(s, s.start, s.end))
	for _, u := range b.usages(s) {
		if u.overage == 0 {
			continue
		}
		unit, qty := storageOverage[cur], u.used-u.limit
		desc := fmt.Sprintf("%s above the %s %s included: %s %s (%s)", u.label, formatCount(u.limit), u.unit, formatCount(qty), u.unit, periodLabel(closingFrom, closingTo))
		if u.resource == "requests" {
			unit, qty = requestsOverage[cur], (u.used-u.limit+requestsUnit-1)/requestsUnit
			desc = fmt.Sprintf("%s above the %s included: %s × 100k (%s)", u.label, formatCount(u.limit), formatCount(qty), periodLabel(closingFrom, closingTo))
		}
		lines = append(lines, events.LineItem{Description: desc, Quantity: qty, UnitAmount: unit, Amount: qty * unit})
	}
	if a := s.acct; a.credit > 0 {
		var subtotal int64
		for _, l := range lines {
			subtotal += l.Amount
		}
		applied := min(a.credit, subtotal)
		if applied > 0 {
			lines = append(lines, events.LineItem{Description: "Credit balance applied", Quantity: 1, UnitAmount: -applied, Amount: -applied})
			a.credit -= applied
			a.creditApplied += applied
		}
	}
	s.requests = 0
	s.alerted["requests"] = 0
	s.exceeded, s.changed = false, false
	b.issue(s, lines, s.start, s.end, "renewal")
	b.sched.at(s.end, func() { b.renew(s) })
}

// beat publishes the billing service's heartbeat on system:health.
func (b *billing) beat() {
	var active, pastDue, suspended, open int64
	for _, s := range b.subs {
		switch s.status {
		case events.SubscriptionActive:
			active++
		case events.SubscriptionPastDue:
			pastDue++
		case events.SubscriptionSuspended:
			suspended++
		}
		if s.open != nil {
			open++
		}
	}
	b.emit(events.TypeSystemHealth, "", "billing-sim", events.Health{
		Component:     "billing-sim",
		Status:        events.HealthOK,
		UptimeSeconds: int64(b.now().Sub(b.start) / time.Second),
		Counters: map[string]int64{
			"tenants":                int64(len(b.accounts)),
			"subscriptionsActive":    active,
			"subscriptionsPastDue":   pastDue,
			"subscriptionsSuspended": suspended,
			"invoicesOpen":           open,
			"invoicesIssued":         int64(b.issued),
			"paymentsFailed":         int64(b.paymentsFailed),
		},
		Timestamp: b.now(),
	})
}

// RunBilling publishes the billing service's events — invoices, payments,
// plan changes, usage alerts and subscription changes on
// tenant:<t>:billing, alerts for the platform team on admin:billing:alerts
// and heartbeats on system:health — until ctx is done or cfg.Duration has
// passed (then it returns nil, once every published event is
// acknowledged). It returns an error for an invalid cfg or when an event
// could not be stored within cfg.RetryFor.
func RunBilling(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults(DefaultBillingSpeed)
	b, err := newBilling(cfg)
	if err != nil {
		return err
	}
	return run(ctx, js, cfg, "billing", b.model)
}
