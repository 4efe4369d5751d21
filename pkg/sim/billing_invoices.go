package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/pulseplatform/pulse/pkg/events"
)

// Collection: issuing an invoice, charging it on the dunning schedule, and
// what happens when it stays unpaid (overdue, suspension, write-off).

// issue creates, publishes and starts collecting an invoice.
func (b *billing) issue(s *subscription, lines []events.LineItem, from, to time.Time, why string) {
	a := s.acct
	a.invoiceN++
	var subtotal int64
	for _, l := range lines {
		subtotal += l.Amount
	}
	tax := taxOf(subtotal, a.country.taxBps)
	inv := &invoice{
		id:     fmt.Sprintf("INV-%s-%05d", strings.ToUpper(a.tenant), a.invoiceN),
		sub:    s,
		plan:   s.plan.name,
		total:  subtotal + tax,
		issued: b.now(),
		details: events.InvoiceDetails{
			PeriodStart: from, PeriodEnd: to, DueDate: b.now().Add(dueAfter),
			LineItems: lines, Subtotal: subtotal, TaxRateBps: a.country.taxBps, Tax: tax, Total: subtotal + tax,
		},
	}
	b.issued++
	b.setInvoice(inv, events.InvoiceOpen)
	cur := a.country.currency
	b.emitInvoice(inv, fmt.Sprintf("Invoice %s for %s issued (%s, %d line(s)); due %s",
		inv.id, formatMoney(inv.total, cur), why, len(lines), inv.details.DueDate.Format("2 Jan 2006")), 0)
	if inv.total == 0 {
		b.setInvoice(inv, events.InvoicePaid)
		b.emitInvoice(inv, fmt.Sprintf("Invoice %s settled by the credit balance", inv.id), 0)
		return
	}
	s.open = inv
	b.sched.at(inv.issued.Add(retrySchedule[0]), func() { b.charge(inv, 1) })
	b.sched.at(inv.issued.Add(overdueAfter), func() { b.overdue(inv) })
	b.sched.at(inv.issued.Add(suspendAfter), func() { b.suspend(inv) })
	b.sched.at(inv.issued.Add(voidAfter), func() { b.writeOff(inv) })
}

func (b *billing) emitInvoice(inv *invoice, message string, daysOverdue int) {
	s := inv.sub
	ev := b.base(s, events.BillingInvoice, inv.status, inv.total, message)
	ev.PlanName = inv.plan
	ev.InvoiceID = inv.id
	d := inv.details
	ev.Invoice = &d
	ev.Metadata.DaysOverdue = daysOverdue
	b.emit(events.TypeBillingInvoice, s.acct.tenant, inv.id, ev)
}

// charge is the k-th automatic payment attempt on an invoice.
func (b *billing) charge(inv *invoice, k int) {
	if inv.status != events.InvoiceOpen && inv.status != events.InvoiceOverdue {
		return
	}
	s, a := inv.sub, inv.sub.acct
	inv.attempts = k
	success := retrySuccess
	if k == 1 {
		success = firstAttemptSuccess
	}
	var reason string
	switch {
	case !a.cardExp.After(b.now()):
		reason = events.DeclineExpiredCard
	case !b.network.chance(success):
		reason = []string{events.DeclineCardDeclined, events.DeclineInsufficientFunds}[b.network.weighted([]float64{0.55, 0.45})]
	}
	if reason == "" {
		b.paid(inv, k, false)
		return
	}
	b.paymentsFailed++
	cur := a.country.currency
	ev := b.base(s, events.BillingPayment, events.PaymentFailed, inv.total, "")
	ev.PlanName = inv.plan
	ev.InvoiceID, ev.PaymentID = inv.id, b.ids.id("pay_", 16)
	ev.Metadata.Attempt, ev.Metadata.MaxAttempts = k, len(retrySchedule)
	ev.Metadata.Reason, ev.Metadata.CardBrand, ev.Metadata.CardLast4 = reason, a.brand, a.last4
	if k < len(retrySchedule) {
		ev.Metadata.NextRetryAt = inv.issued.Add(retrySchedule[k])
		ev.Message = fmt.Sprintf("Payment of %s for %s failed (%s, %s ending %s); retrying on %s",
			formatMoney(inv.total, cur), inv.id, strings.ReplaceAll(reason, "_", " "), a.brand, a.last4, ev.Metadata.NextRetryAt.Format("2 Jan 2006"))
		b.sched.at(ev.Metadata.NextRetryAt, func() { b.charge(inv, k+1) })
	} else {
		ev.Message = fmt.Sprintf("Payment of %s for %s failed (%s); no retries left: service is suspended on %s unless paid",
			formatMoney(inv.total, cur), inv.id, strings.ReplaceAll(reason, "_", " "), inv.issued.Add(suspendAfter).Format("2 Jan 2006"))
	}
	b.emit(events.TypeBillingPayment, a.tenant, ev.PaymentID, ev)
	if reason == events.DeclineExpiredCard && b.customers.chance(cardUpdateAfterFail) {
		b.newCard(a, b.customers, 700*day, 1400*day)
	}
	if s.status == events.SubscriptionActive {
		b.setStatus(s, events.SubscriptionPastDue, fmt.Sprintf("Subscription %s is past due: payment for %s failed; service continues while we retry", s.id, inv.id))
	}
	if k == len(retrySchedule) {
		b.admin(s, events.AdminPaymentFailed, events.SeverityWarning, inv, inv.total,
			fmt.Sprintf("All %d payment attempts for %s of %s (%s) failed (%s)", k, inv.id, a.tenant, formatMoney(inv.total, cur), reason))
	}
}

// paid settles an invoice with a successful payment.
func (b *billing) paid(inv *invoice, attempt int, manual bool) {
	s, a := inv.sub, inv.sub.acct
	cur := a.country.currency
	ev := b.base(s, events.BillingPayment, events.PaymentSucceeded, inv.total,
		fmt.Sprintf("Payment of %s received for %s (%s ending %s)", formatMoney(inv.total, cur), inv.id, a.brand, a.last4))
	if manual {
		ev.Message = fmt.Sprintf("Payment of %s received for %s, made by the customer after suspension (%s ending %s)", formatMoney(inv.total, cur), inv.id, a.brand, a.last4)
	}
	ev.PlanName = inv.plan
	ev.InvoiceID, ev.PaymentID = inv.id, b.ids.id("pay_", 16)
	ev.Metadata.Attempt, ev.Metadata.MaxAttempts = attempt, max(attempt, len(retrySchedule))
	ev.Metadata.CardBrand, ev.Metadata.CardLast4 = a.brand, a.last4
	b.emit(events.TypeBillingPayment, a.tenant, ev.PaymentID, ev)

	b.setInvoice(inv, events.InvoicePaid)
	b.emitInvoice(inv, fmt.Sprintf("Invoice %s paid", inv.id), 0)
	s.open = nil
	switch s.status {
	case events.SubscriptionPastDue:
		b.setStatus(s, events.SubscriptionActive, fmt.Sprintf("Subscription %s is active again: %s paid", s.id, inv.id))
	case events.SubscriptionSuspended:
		b.setStatus(s, events.SubscriptionActive, fmt.Sprintf("Subscription %s reactivated: %s paid", s.id, inv.id))
		b.admin(s, events.AdminSubscriptionReactivated, events.SeverityInfo, inv, inv.total,
			fmt.Sprintf("%s paid %s (%s) after suspension; %s reactivated", a.tenant, inv.id, formatMoney(inv.total, cur), s.id))
		if s.held { // the period ended while suspended: a new one starts now
			s.held = false
			s.end = b.now()
			b.renew(s)
		}
	}
}

func (b *billing) overdue(inv *invoice) {
	if inv.status != events.InvoiceOpen {
		return
	}
	s := inv.sub
	days := int(b.now().Sub(inv.details.DueDate) / day)
	b.setInvoice(inv, events.InvoiceOverdue)
	cur := s.acct.country.currency
	b.emitInvoice(inv, fmt.Sprintf("Invoice %s for %s is overdue since %s", inv.id, formatMoney(inv.total, cur), inv.details.DueDate.Format("2 Jan 2006")), days)
	b.admin(s, events.AdminInvoiceOverdue, events.SeverityWarning, inv, inv.total,
		fmt.Sprintf("Invoice %s of %s (%s) is %d day(s) overdue", inv.id, s.acct.tenant, formatMoney(inv.total, cur), days))
}

func (b *billing) suspend(inv *invoice) {
	s := inv.sub
	if inv.status != events.InvoiceOverdue || s.status != events.SubscriptionPastDue {
		return
	}
	cur := s.acct.country.currency
	b.setStatus(s, events.SubscriptionSuspended, fmt.Sprintf("Subscription %s suspended: %s (%s) unpaid for 14 days", s.id, inv.id, formatMoney(inv.total, cur)))
	b.admin(s, events.AdminSubscriptionSuspended, events.SeverityCritical, inv, inv.total,
		fmt.Sprintf("%s suspended for %s: %s unpaid for 14 days", s.acct.tenant, s.product.product, formatMoney(inv.total, cur)))
	if b.customers.chance(payAfterSuspension) {
		b.sched.after(time.Duration(b.customers.between(1, 12))*day+time.Duration(b.customers.intn(86400))*time.Second, func() {
			if inv.status == events.InvoiceOverdue {
				b.newCard(s.acct, b.customers, 700*day, 1400*day)
				b.paid(inv, inv.attempts+1, true)
			}
		})
	}
}

// writeOff voids an invoice unpaid for 30 days and cancels its
// subscription; the tenant signs up again later, so the population stays.
func (b *billing) writeOff(inv *invoice) {
	if inv.status != events.InvoiceOverdue {
		return
	}
	s := inv.sub
	cur := s.acct.country.currency
	b.setInvoice(inv, events.InvoiceVoid)
	b.emitInvoice(inv, fmt.Sprintf("Invoice %s for %s voided after 30 days unpaid", inv.id, formatMoney(inv.total, cur)), int(b.now().Sub(inv.details.DueDate)/day))
	s.open = nil
	b.setStatus(s, events.SubscriptionCancelled, fmt.Sprintf("Subscription %s cancelled: %s unpaid for 30 days", s.id, inv.id))
	b.admin(s, events.AdminSubscriptionCancelled, events.SeverityCritical, inv, inv.total,
		fmt.Sprintf("%s cancelled for non-payment; %s of %s written off", s.id, formatMoney(inv.total, cur), s.acct.tenant))
	b.replaceLater(s.acct)
}

func (b *billing) replaceLater(a *account) {
	b.sched.after(time.Duration(b.customers.between(1, 10))*day, func() { b.addSubscription(a, false) })
}
