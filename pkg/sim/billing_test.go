package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/pkg/events"
)

// billingRun simulates two years of 100 subscriptions: enough for every
// path (suspensions, write-offs, downgrades) to happen several times.
func billingRun(t *testing.T, seed int64) (*billing, []record) {
	t.Helper()
	b := mustBilling(t, billingCfg(seed, 10))
	return b, simulate(t, "billing", seed, b.model, testStart.Add(730*day))
}

func TestBillingStateMachinesReachEveryTransition(t *testing.T) {
	t.Parallel()
	b := mustBilling(t, billingCfg(21, 10))
	inv, sub := map[[2]string]int{}, map[[2]string]int{}
	b.onInvoice = func(_ *invoice, from, to string) { inv[[2]string{from, to}]++ }
	b.onSubscription = func(_ *subscription, from, to string) { sub[[2]string{from, to}]++ }
	simulate(t, "billing", 21, b.model, testStart.Add(730*day))
	for name, c := range map[string]struct {
		table map[string][]string
		seen  map[[2]string]int
	}{"invoice": {invoiceTransitions, inv}, "subscription": {subscriptionTransitions, sub}} {
		for from, tos := range c.table {
			for _, to := range tos {
				if c.seen[[2]string{from, to}] == 0 {
					t.Errorf("%s transition %q → %q never happened", name, from, to)
				}
			}
		}
		for tr := range c.seen {
			if !allowedString(c.table, tr[0], tr[1]) {
				t.Errorf("impossible %s transition %q → %q", name, tr[0], tr[1])
			}
		}
	}
}

// Money adds up: every invoice's lines, tax and total; every paid invoice
// has exactly one successful payment of its total; plan changes charge the
// prorated difference; credit granted by downgrades is applied and never
// lost.
func TestBillingMoneyAddsUp(t *testing.T) {
	t.Parallel()
	b, recs := billingRun(t, 22)
	type inv struct {
		total    int64
		status   string
		payments int64 // succeeded, in minor units
		n        int
		currency string
	}
	invoices := map[string]*inv{}
	credited := map[string]int64{} // by tenant: downgrade credits
	applied := map[string]int64{}  // by tenant: credit lines on invoices
	var upgrades, downgrades, prorations, overages int
	var pendingProration *events.Billing
	for _, r := range recs {
		if !strings.HasPrefix(r.ev.Type, "io.pulse.billing.") {
			continue
		}
		e := decode[events.Billing](t, r)
		switch e.Type {
		case events.BillingInvoice:
			d := e.Invoice
			var sum int64
			for _, l := range d.LineItems {
				if l.Amount != l.Quantity*l.UnitAmount {
					t.Fatalf("line %+v: amount is not quantity × unit amount", l)
				}
				sum += l.Amount
				if l.Description == "Credit balance applied" && e.Status == events.InvoiceOpen {
					applied[e.TenantID] -= l.Amount
				}
				if strings.Contains(l.Description, " above the ") && e.Status == events.InvoiceOpen {
					overages++
				}
			}
			if sum != d.Subtotal || d.Tax != taxOf(d.Subtotal, d.TaxRateBps) || d.Total != d.Subtotal+d.Tax || e.Amount != d.Total {
				t.Fatalf("invoice does not add up: %s", r.raw)
			}
			in := invoices[e.InvoiceID]
			if in == nil {
				if e.Status != events.InvoiceOpen {
					t.Fatalf("invoice %s first seen as %s", e.InvoiceID, e.Status)
				}
				in = &inv{total: e.Amount, currency: e.Currency}
				invoices[e.InvoiceID] = in
				if p := pendingProration; p != nil {
					// The invoice right after an upgrade is its proration.
					pendingProration = nil
					if len(d.LineItems) != 2 || d.LineItems[0].Amount != -p.Metadata.ProrationCredit ||
						d.LineItems[1].Amount != p.Metadata.ProrationCharge || d.Subtotal != p.Amount {
						t.Fatalf("proration invoice %s does not match the upgrade %+v", r.raw, p)
					}
					prorations++
				}
			}
			if in.total != e.Amount || in.currency != e.Currency {
				t.Fatalf("invoice %s changed amount", e.InvoiceID)
			}
			in.status = e.Status
		case events.BillingPayment:
			in := invoices[e.InvoiceID]
			if in == nil || e.Amount != in.total || e.Currency != in.currency {
				t.Fatalf("payment for an unknown invoice or of the wrong amount: %s", r.raw)
			}
			if e.Status == events.PaymentSucceeded {
				in.payments += e.Amount
				in.n++
			}
		case events.BillingPlanChange:
			m := e.Metadata
			if e.Amount != m.ProrationCharge-m.ProrationCredit {
				t.Fatalf("plan change amount is not charge − credit: %s", r.raw)
			}
			if e.Status == events.PlanUpgraded {
				upgrades++
				if e.Amount > 0 {
					ec := e
					pendingProration = &ec
				}
			} else {
				downgrades++
				credited[e.TenantID] -= e.Amount
			}
		}
	}
	var paid, void int
	for id, in := range invoices {
		switch in.status {
		case events.InvoicePaid:
			paid++
			if in.total == 0 && in.n == 0 {
				continue // settled by the credit balance
			}
			if in.n != 1 || in.payments != in.total {
				t.Fatalf("paid invoice %s: %d successful payments for %d of %d", id, in.n, in.payments, in.total)
			}
		case events.InvoiceVoid:
			void++
			fallthrough
		default:
			if in.n != 0 {
				t.Fatalf("unpaid invoice %s has a successful payment", id)
			}
		}
	}
	for _, a := range b.accounts {
		if credited[a.tenant] != a.creditGranted || applied[a.tenant] != a.creditApplied || a.credit != a.creditGranted-a.creditApplied || a.credit < 0 {
			t.Fatalf("credit of %s: granted %d (events %d), applied %d (events %d), balance %d",
				a.tenant, a.creditGranted, credited[a.tenant], a.creditApplied, applied[a.tenant], a.credit)
		}
	}
	t.Logf("%d invoices (%d paid, %d void), %d upgrades (%d prorated), %d downgrades, %d overage lines",
		len(invoices), paid, void, upgrades, prorations, downgrades, overages)
	if paid < 1000 || void == 0 || upgrades == 0 || prorations == 0 || downgrades == 0 || overages == 0 {
		t.Fatal("some billing paths never happened")
	}
}

// A failed charge is retried on the dunning schedule; an unpaid invoice
// becomes overdue, then the subscription is suspended, and the platform
// team hears of each step.
func TestDunningFollowsTheSchedule(t *testing.T) {
	t.Parallel()
	_, recs := billingRun(t, 23)
	issued := map[string]time.Time{}
	reasons := map[string]int{}
	admin := map[string]int{}
	for _, r := range recs {
		switch r.ev.Type {
		case events.TypeBillingInvoice:
			e := decode[events.Billing](t, r)
			switch e.Status {
			case events.InvoiceOpen:
				issued[e.InvoiceID] = e.Timestamp
			case events.InvoiceOverdue:
				if got := e.Timestamp.Sub(issued[e.InvoiceID]); got != overdueAfter || e.Metadata.DaysOverdue != 1 {
					t.Fatalf("overdue %s after issue: %s", got, r.raw)
				}
			case events.InvoiceVoid:
				if got := e.Timestamp.Sub(issued[e.InvoiceID]); got != voidAfter {
					t.Fatalf("voided %s after issue", got)
				}
			}
		case events.TypeBillingPayment:
			e := decode[events.Billing](t, r)
			m := e.Metadata
			if e.Status == events.PaymentFailed {
				reasons[m.Reason]++
				if got := e.Timestamp.Sub(issued[e.InvoiceID]); got != retrySchedule[m.Attempt-1] {
					t.Fatalf("attempt %d %s after issue, want %s", m.Attempt, got, retrySchedule[m.Attempt-1])
				}
				if m.Attempt < len(retrySchedule) && !m.NextRetryAt.Equal(issued[e.InvoiceID].Add(retrySchedule[m.Attempt])) {
					t.Fatalf("next retry %s: %s", m.NextRetryAt, r.raw)
				}
			}
		case events.TypeAdminBillingAlert:
			admin[decode[events.AdminBillingAlert](t, r).Kind]++
		}
	}
	for _, reason := range []string{events.DeclineCardDeclined, events.DeclineInsufficientFunds, events.DeclineExpiredCard} {
		if reasons[reason] == 0 {
			t.Errorf("no payment failed with %s: %v", reason, reasons)
		}
	}
	for _, kind := range []string{events.AdminPaymentFailed, events.AdminInvoiceOverdue, events.AdminSubscriptionSuspended,
		events.AdminSubscriptionReactivated, events.AdminSubscriptionCancelled} {
		if admin[kind] == 0 {
			t.Errorf("no %s admin alert: %v", kind, admin)
		}
	}
}

// Usage climbs toward the plan's limits with one alert per threshold.
func TestUsageAlertsAt80_90_100(t *testing.T) {
	t.Parallel()
	_, recs := billingRun(t, 24)
	byStatus := map[string]int{}
	for _, r := range recs {
		if r.ev.Type != events.TypeBillingUsageAlert {
			continue
		}
		e := decode[events.Billing](t, r)
		m := e.Metadata
		want := map[int]string{80: events.UsageWarning, 90: events.UsageCritical, 100: events.UsageExceeded}[m.Threshold]
		if e.Status != want || m.Percentage < m.Threshold || m.Usage*100/m.Limit != int64(m.Percentage) {
			t.Fatalf("usage alert does not match its numbers: %s", r.raw)
		}
		if (m.Threshold < 100) != (e.Amount == 0) && m.Resource == "requests" {
			t.Fatalf("overage amount %d at %d%%: %s", e.Amount, m.Percentage, r.raw)
		}
		byStatus[e.Status]++
	}
	if byStatus[events.UsageWarning] == 0 || byStatus[events.UsageCritical] == 0 || byStatus[events.UsageExceeded] == 0 {
		t.Fatalf("usage alerts by status: %v", byStatus)
	}
}

func TestProrationIsExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount      int64
		part, whole time.Duration
		want        int64
	}{
		{9900, 15 * day, 30 * day, 4950},
		{9900, 0, 30 * day, 0},
		{9900, 30 * day, 30 * day, 9900},
		{2900, 10 * day, 31 * day, 935}, // 935.48… rounds down
		{100, time.Second, 2 * time.Second, 50},
		{1, time.Second, 2 * time.Second, 1}, // half rounds up
		{4999000, 364 * day, 365 * day, 4985304},
	}
	for _, tt := range tests {
		if got := prorate(tt.amount, tt.part, tt.whole); got != tt.want {
			t.Errorf("prorate(%d, %s, %s) = %d, want %d", tt.amount, tt.part, tt.whole, got, tt.want)
		}
	}
	if taxOf(12345, 1900) != 2346 || taxOf(250, 2000) != 50 || taxOf(0, 2100) != 0 || taxOf(1, 5000) != 1 {
		t.Fatal("taxOf does not round half up")
	}
}
